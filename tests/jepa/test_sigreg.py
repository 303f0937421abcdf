"""SIGReg: the statistic against its closed form, what it tells apart, its gradient, and its place in pretraining."""

import math

import pytest
import torch
from scipy import integrate

from jepa.config import ConfigError
from jepa.train import pretrain as pt
from jepa.train.sigreg import SIGReg, sigreg_directions
from tests.helpers import write_moving_bars
from tests.jepa.test_pretrain import read_metrics, tiny_config


def test_a_collapsed_batch_scores_n_times_the_integral_of_its_characteristic_function_gap():
    # Every row at one point c: phi_N(t) = exp(i t c') on each slice, so the statistic is N times
    # integral |exp(i t c') - exp(-t^2/2)|^2 exp(-t^2/2) dt over [-3, 3]. At c' = 0 it is (1 - phi)^2.
    n = 50
    reg = SIGReg(knots=201, t_max=3.0)
    d = sigreg_directions(8, 16, seed=0)
    exact, _ = integrate.quad(lambda t: (1 - math.exp(-t * t / 2)) ** 2 * math.exp(-t * t / 2), -3, 3)
    assert float(reg(torch.zeros(n, 8), d)) == pytest.approx(n * exact, rel=1e-3)
    # the default 17 knots keep the trapezoid within 2% of it
    assert float(SIGReg()(torch.zeros(n, 8), d)) == pytest.approx(n * exact, rel=2e-2)


def test_standard_normal_scores_low_and_collapse_or_a_wrong_scale_scores_high():
    g = torch.Generator().manual_seed(0)
    reg, d = SIGReg(), sigreg_directions(32, 64, seed=1)
    gaussian = float(reg(torch.randn(4000, 32, generator=g), d))
    shrunk = float(reg(0.1 * torch.randn(4000, 32, generator=g), d))
    shifted = float(reg(torch.randn(4000, 32, generator=g) + 1.0, d))
    one_factor = float(reg(torch.randn(4000, 1, generator=g).expand(-1, 32), d))  # rank-1 batch
    assert gaussian < 3.0
    assert min(shrunk, shifted, one_factor) > 30 * gaussian


def test_its_gradient_spreads_a_nearly_collapsed_batch():
    g = torch.Generator().manual_seed(0)
    z = (0.01 * torch.randn(256, 16, generator=g)).requires_grad_(True)
    reg, opt = SIGReg(), torch.optim.Adam([z], lr=0.02)
    start = float(reg(z.detach(), sigreg_directions(16, 64, seed=0)))
    for step in range(200):
        opt.zero_grad()
        reg(z, sigreg_directions(16, 64, seed=step)).backward()
        opt.step()
    assert float(z.detach().std(0).mean()) > 0.5  # from 0.01: spread out by the loss alone
    assert float(reg(z.detach(), sigreg_directions(16, 64, seed=999))) < 0.05 * start


def test_directions_are_unit_norm_and_a_function_of_the_seed():
    a, b = sigreg_directions(12, 5, seed=3), sigreg_directions(12, 5, seed=3)
    assert torch.equal(a, b) and a.shape == (12, 5)
    assert torch.allclose(a.norm(dim=0), torch.ones(5))
    assert not torch.equal(a, sigreg_directions(12, 5, seed=4))


def test_bad_shapes_and_settings_are_errors():
    with pytest.raises(ValueError, match="z \\[N, D\\]"):
        SIGReg()(torch.zeros(4, 8), torch.zeros(7, 3))
    with pytest.raises(ValueError, match="knots"):
        SIGReg(knots=1)


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    return write_moving_bars(tmp_path_factory.mktemp("bars"))


def test_pretraining_adds_the_weighted_term_beside_the_prediction_loss(tmp_path, bars):
    on = tiny_config(tmp_path / "on", bars, steps=3, **{"optimization.sigreg.weight": 0.5})
    run = pt.run_pretraining(on)
    assert run.sigreg is not None
    for r in read_metrics(tmp_path / "on" / "run"):
        assert r["sigreg"] > 0
        assert r["loss"] == pytest.approx(r["prediction_loss"] + 0.5 * r["sigreg"], rel=1e-5)
    # off by default: no term, and the loss is the prediction loss of the same first step
    off = pt.run_pretraining(tiny_config(tmp_path / "off", bars, steps=1))
    assert off.sigreg is None
    first_off = read_metrics(tmp_path / "off" / "run")[0]
    first_on = read_metrics(tmp_path / "on" / "run")[0]
    assert "sigreg" not in first_off
    assert first_off["loss"] == pytest.approx(first_on["prediction_loss"], rel=1e-5)


def test_the_term_changes_the_encoders_update(tmp_path, bars):
    runs = {w: pt.run_pretraining(tiny_config(tmp_path / str(w), bars, steps=2, **{"optimization.sigreg.weight": w}))
            for w in (0.0, 1.0)}
    a, b = (dict(runs[w].encoder.named_parameters()) for w in (0.0, 1.0))
    assert max(float((a[k] - b[k]).detach().abs().max()) for k in a) > 1e-6


@pytest.mark.parametrize("key,value", [("weight", -1), ("knots", 1), ("slices", 0), ("t_max", 0)])
def test_bad_sigreg_settings_are_rejected_at_load_time(tmp_path, bars, key, value):
    with pytest.raises(ConfigError, match=f"optimization.sigreg.{key}"):
        tiny_config(tmp_path, bars, steps=1, **{f"optimization.sigreg.{key}": value})

