import math

import pytest
import torch

from jepa.train.ema import ema_update
from jepa.train.optim import build_adamw, set_lr_wd
from jepa.train.schedules import LRSchedule, cosine_between, linear_between


def test_wsd_schedule():
    s = LRSchedule(kind="wsd", base=1.0, start=0.1, final=0.0, warmup_steps=10, decay_steps=20)
    assert s(0, 100) == pytest.approx(0.1) and s(5, 100) == pytest.approx(0.55) and s(10, 100) == 1.0
    assert s(79, 100) == 1.0 and s(80, 100) == 1.0 and s(90, 100) == pytest.approx(0.5)
    assert s(100, 100) == pytest.approx(0.0)


def test_cosine_and_linear_schedules():
    c = LRSchedule(kind="cosine", base=1.0, start=0.0, final=0.2, warmup_steps=0)
    assert c(0, 100) == pytest.approx(1.0) and c(50, 100) == pytest.approx(0.6) and c(100, 100) == pytest.approx(0.2)
    lin = LRSchedule(kind="linear", base=5.25e-4, final=1e-6, warmup_steps=0)
    assert lin(500, 1000) == pytest.approx((5.25e-4 + 1e-6) / 2)
    assert cosine_between(25, 100, 0.04, 0.4) == pytest.approx(0.4 + 0.5 * (0.04 - 0.4) * (1 + math.cos(math.pi / 4)))
    assert linear_between(50, 100, 0.996, 1.0) == pytest.approx(0.998)
    with pytest.raises(ValueError, match="kind"):
        LRSchedule(kind="step")


def test_the_run_length_comes_from_the_caller_unless_the_schedule_sets_its_own():
    """No placeholder is filled in by the trainer: the schedule spans the run it is called for, or
    ``total_steps`` when set (a cooldown stopping part-way into its decay), and is never mutated."""
    own = LRSchedule(kind="linear", base=1.0, final=0.0, warmup_steps=0)
    assert own(50, 100) == pytest.approx(0.5) and own(50, 200) == pytest.approx(0.75)
    assert own.total_steps is None
    cooldown = LRSchedule(kind="linear", base=1.0, final=0.0, warmup_steps=0, total_steps=200)
    assert cooldown(100, 100) == pytest.approx(0.5)


def test_ema_update_matches_its_formula():
    torch.manual_seed(0)
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)


def test_no_weight_decay_on_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = build_adamw({"m": model}, lr_scale={"m": 0.5})
    set_lr_wd(opt, 1e-3, 0.04)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model[0].weight)}
    assert all(g["lr"] == pytest.approx(5e-4) for g in opt.param_groups)
