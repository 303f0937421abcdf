"""Typed configs: range checks and choices are enforced at load time, with the full key and its source."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from jepa.config import (
    Checked,
    ConfigError,
    ConfigValueError,
    in_range,
    known_device,
    load_config,
    non_negative,
    positive,
    require,
)
from jepa.train.ac import ACConfig
from jepa.train.pretrain import PretrainConfig
from tests.helpers import REPO_ROOT, assert_config_rejects


@dataclass
class _Inner(Checked):
    rate: float = 0.1
    mode: Literal["a", "b"] = "a"

    def check(self) -> None:
        non_negative(self, "rate")


@dataclass
class _Outer(Checked):
    inner: _Inner = field(default_factory=_Inner)
    items: list[_Inner] = field(default_factory=lambda: [_Inner()])
    steps: int = 3
    device: str = "cpu"
    limit: int = 5

    def check(self) -> None:
        positive(self, "steps")
        known_device(self, "device")
        require(self.limit >= self.steps, "limit", f"must be >= steps={self.steps}, got {self.limit}")


def test_a_bad_value_names_the_full_key_and_the_override_that_set_it():
    with pytest.raises(ConfigError) as e:
        load_config(_Outer, None, ["steps=2", "inner.rate=nan"])
    assert str(e.value) == "override 'inner.rate=nan': key 'inner.rate': must be finite and >= 0, got nan"
    with pytest.raises(ConfigError, match=r"key 'items\[1\].rate': must be finite and >= 0, got -1.0"):
        load_config(_Outer, None, ["items=[{rate: 0.5}, {rate: -1}]"])
    with pytest.raises(ConfigError, match="key 'limit': must be >= steps=9, got 5"):
        load_config(_Outer, None, ["steps=9"])


def test_a_bad_value_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("inner: {rate: -0.5}\n")
    with pytest.raises(ConfigError, match=rf"^{path}: key 'inner.rate': must be finite and >= 0, got -0.5$"):
        load_config(_Outer, path)


def test_literal_choices_are_checked_on_load_and_in_python():
    with pytest.raises(ConfigError, match=r"override 'inner.mode=c': key 'inner.mode': .*'a', 'b'"):
        load_config(_Outer, None, ["inner.mode=c"])
    with pytest.raises(ConfigValueError, match="key 'mode': must be one of"):
        _Inner(mode="c")
    with pytest.raises(ConfigValueError, match="key 'rate'"):  # checks also run when built in Python
        _Inner(rate=-1.0)


def test_known_devices():
    for ok in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        assert load_config(_Outer, None, [f"device={ok}"]).device == ok
    for bad in ("gpu", "cuda:x", "CPU"):
        with pytest.raises(ConfigError, match=f"key 'device': must be auto, cpu, cuda, cuda:N or mps, got '{bad}'"):
            load_config(_Outer, None, [f"device={bad}"])


def test_in_range_checks_every_element_of_a_pair():
    @dataclass
    class Pair(Checked):
        ema: tuple[float, float] = (0.9, 0.99)

        def check(self) -> None:
            in_range(self, "ema", 0.0, 1.0)

    assert load_config(Pair, None, ["ema=[0.0,1.0]"]).ema == (0.0, 1.0)
    with pytest.raises(ConfigError, match=r"key 'ema': must be in \[0, 1\], got \(0.9, 1.5\)"):
        load_config(Pair, None, ["ema=[0.9,1.5]"])


# One row per hole: (schema, override, key named in the error, what the message says).
HOLES = [
    (PretrainConfig, "optimization.max_steps=0", "optimization.max_steps", "> 0"),
    (PretrainConfig, "optimization.global_batch=-4", "optimization.global_batch", "> 0"),
    (PretrainConfig, "optimization.lr.base=nan", "optimization.lr.base", "finite and >= 0"),
    (PretrainConfig, "optimization.lr.final=-1e-5", "optimization.lr.final", "finite and >= 0"),
    (PretrainConfig, "optimization.lr.total_steps=0", "optimization.lr.total_steps", "> 0"),
    (PretrainConfig, "optimization.lr.kind=step", "optimization.lr.kind", "expected one of"),
    (PretrainConfig, "optimization.ema=[0.996,1.001]", "optimization.ema", "in [0, 1]"),
    (PretrainConfig, "optimization.weight_decay=[0.04,inf]", "optimization.weight_decay", "finite and >= 0"),
    (PretrainConfig, "optimization.clip_grad=0", "optimization.clip_grad", "> 0"),
    (PretrainConfig, "meta.checkpoint_every=0", "meta.checkpoint_every", "> 0"),
    (PretrainConfig, "meta.log_every=0", "meta.log_every", "> 0"),
    (PretrainConfig, "meta.device=gpu", "meta.device", "auto, cpu, cuda"),
    (PretrainConfig, "meta.parallel=zero", "meta.parallel", "expected one of"),
    (PretrainConfig, "data.source=videos", "data.source", "expected one of"),
    (PretrainConfig, "data.frames_per_clip=0", "data.frames_per_clip", "> 0"),
    (PretrainConfig, "model.tubelet_size=4", "data.frames_per_clip", "tubelet_size=4"),
    (PretrainConfig, "data.crop_size=60", "data.crop_size", "multiple of model.patch_size"),
    (PretrainConfig, "data.weights=[1.0,2.0]", "data.weights", "one weight per path"),
    (PretrainConfig, "data.random_resize_scale=[0.9,0.3]", "data.random_resize_scale", "low <= high"),
    (PretrainConfig, "model.size=enormous", "model.size", "must be one of"),
    (PretrainConfig, "model.num_heads=3", "model.num_heads", "divide embed_dim"),
    (PretrainConfig, "model.pos_encoding=learned", "model.pos_encoding", "expected one of"),
    (PretrainConfig, "model.num_mask_tokens=1", "model.num_mask_tokens", "one mask token per mask"),
    (PretrainConfig, "masks=[{num_blocks: 0}]", "masks[0].num_blocks", "> 0"),
    (PretrainConfig, "masks=[{spatial_scale: [0.2, 1.5]}]", "masks[0].spatial_scale", "in [0, 1]"),
    # (omegaconf names a key inside a list element without the list's path; the override is named)
    (PretrainConfig, "masks=[{temporal_anchor: middle}]", "temporal_anchor", "expected one of"),
    (ACConfig, "optimization.batch_size=0", "optimization.batch_size", "> 0"),
    (ACConfig, "optimization.max_steps=0", "optimization.max_steps", "> 0"),
    (ACConfig, "optimization.lr.base=nan", "optimization.lr.base", "finite and >= 0"),
    (ACConfig, "optimization.lr.warmup_steps=-1", "optimization.lr.warmup_steps", "finite and >= 0"),
    (ACConfig, "optimization.weight_decay=-0.1", "optimization.weight_decay", "finite and >= 0"),
    (ACConfig, "optimization.rollout_steps=0", "optimization.rollout_steps", "> 0"),
    (ACConfig, "data.window=2", "data.window", "rollout_steps + 1 = 3"),
    (ACConfig, "data.encode_batch=0", "data.encode_batch", "> 0"),
    (ACConfig, "data.source=lerobott", "data.source", "expected one of"),
    (ACConfig, "model.num_heads=5", "model.num_heads", "divide embed_dim"),
    (ACConfig, "model.encoder_init=scratch", "model.encoder_init", "expected one of"),
    (ACConfig, "meta.device=tpu", "meta.device", "auto, cpu, cuda"),
    (ACConfig, "meta.checkpoint_every=0", "meta.checkpoint_every", "> 0"),
    (ACConfig, "state_update.kind=posee", "state_update.kind", "expected one of"),
    (ACConfig, "state_update={kind: pose, sclae: [1.0]}", "state_update.sclae", "not in 'StateUpdateConfig'"),
    (ACConfig, "state_update.scale=[0.05,nan]", "state_update.scale[1]", "finite"),
]


@pytest.mark.parametrize(("schema", "override", "key", "problem"), HOLES, ids=[h[1] for h in HOLES])
def test_a_bad_value_is_rejected_at_load_with_its_key(schema, override, key, problem):
    assert_config_rejects(schema, override, key, problem)


def test_the_shipped_configs_pass_their_checks():
    for path in sorted((REPO_ROOT / "configs" / "pretrain").glob("*.yaml")):
        load_config(PretrainConfig, path)
    for path in sorted((REPO_ROOT / "configs" / "ac").glob("*.yaml")):
        load_config(ACConfig, path)
