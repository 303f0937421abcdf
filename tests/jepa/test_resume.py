"""Resume safety and the numerical guard of the shared training loop, on a toy model."""

import itertools
import json

import pytest
import torch
from torch import nn

from jepa.errors import ResumeMismatchError, TrainingDivergedError
from jepa.train.checkpointing import Checkpointer
from jepa.train.logging import MetricsLogger
from jepa.train.loop import TrainState, train_loop
from jepa.train.resume import config_changes, dataset_changes, open_run, trim_metrics

CONFIG = {"optimization": {"lr": 0.1, "max_steps": 6}, "meta": {"progress": False, "seed": 0}}
DATASET = {"kind": "toy", "path": "data", "episodes": 3, "sha256": "abc"}


class _Stop(Exception):
    pass


def _step(poison_at=None, nan_loss_at=None, stop_at=None):
    x = torch.ones(4, 2)

    def step(state, batch):
        if state.step + 1 == stop_at:
            raise _Stop
        model = state.modules["model"]
        loss = model(x).pow(2).mean()
        state.optimizer.zero_grad()
        loss.backward()
        state.optimizer.step()
        if state.step + 1 == poison_at:  # weights become NaN while the step's loss is still finite
            with torch.no_grad():
                model.weight.fill_(float("nan"))
        value = float("nan") if state.step + 1 == nan_loss_at else float(loss.detach())
        return {"loss": value, "skipped": 1}

    return step


def _train(run_dir, step_fn, config=CONFIG, dataset=DATASET, allow_changed=False, max_steps=6, every=2,
           finished_is_a_result=False):
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    state = TrainState({"model": model}, torch.optim.SGD(model.parameters(), lr=0.1))
    ckpt = Checkpointer(run_dir, every)
    open_run(ckpt, config, dataset, allow_changed, max_steps=max_steps if finished_is_a_result else None)
    return train_loop(state, step_fn, lambda e, b: itertools.repeat({}), 100, max_steps, ckpt,
                      MetricsLogger(run_dir / "metrics.jsonl"), config, log_every=1, progress=False)


def _steps(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_killed_run_resumes_with_each_step_logged_once_and_the_skips_counted(tmp_path, capsys):
    with pytest.raises(_Stop):
        _train(tmp_path, _step(stop_at=6))  # killed after logging step 5; the checkpoint holds step 4
    assert _steps(tmp_path) == [1, 2, 3, 4, 5]
    state = _train(tmp_path, _step())
    assert _steps(tmp_path) == [1, 2, 3, 4, 5, 6] and state.skipped == 6  # 4 from the checkpoint + 2
    assert "6 unreadable items were skipped" in capsys.readouterr().err
    assert (tmp_path / "config.yaml").exists() and json.loads((tmp_path / "dataset.json").read_text()) == DATASET


def test_resuming_with_another_config_or_dataset_is_refused_unless_allowed(tmp_path, capsys):
    _train(tmp_path, _step(), max_steps=2)
    changed = {**CONFIG, "optimization": {"lr": 0.5, "max_steps": 6}, "meta": {"progress": True, "seed": 0}}
    with pytest.raises(ResumeMismatchError, match=r"(?s)latest\.pt.*optimization\.lr: 0\.1 -> 0\.5") as err:
        _train(tmp_path, _step(), config=changed)
    assert "meta.progress" not in str(err.value)  # does not change what is computed: not compared
    with pytest.raises(ResumeMismatchError, match=r"(?s)dataset: data \(3 episodes.*now data \(4 episodes"):
        _train(tmp_path, _step(), dataset={**DATASET, "episodes": 4, "sha256": "def"})
    _train(tmp_path, _step(), dataset={**DATASET, "path": "moved/data"})  # the same data elsewhere: fine
    _train(tmp_path, _step(), config=changed, allow_changed=True, max_steps=8)
    assert "optimization.lr: 0.1 -> 0.5" in (tmp_path / "resume.log").read_text()
    assert "resumed at step 6 with changes" in capsys.readouterr().err


def test_a_finished_run_reports_a_changed_dataset_instead_of_refusing_it(tmp_path, capsys):
    _train(tmp_path, _step(), max_steps=4)
    config_yaml = (tmp_path / "config.yaml").read_text()
    grown = {**DATASET, "episodes": 4, "sha256": "def"}
    with pytest.raises(ResumeMismatchError):  # an AC-style trainer rebuilds outputs: always checked
        _train(tmp_path, _step(), dataset=grown, max_steps=4)
    state = _train(tmp_path, _step(), dataset=grown, max_steps=4, finished_is_a_result=True)
    assert state.step == 4 and "the run is finished (step 4)" in capsys.readouterr().err
    assert (tmp_path / "config.yaml").read_text() == config_yaml and json.loads(
        (tmp_path / "dataset.json").read_text()) == DATASET  # the records still describe the checkpoint
    with pytest.raises(ResumeMismatchError):  # a longer run would train on the changed data: refused
        _train(tmp_path, _step(), dataset=grown, max_steps=6, finished_is_a_result=True)
    other = {**CONFIG, "optimization": {"lr": 0.5, "max_steps": 6}}
    with pytest.raises(ResumeMismatchError, match="optimization.lr"):  # another config asks for another run
        _train(tmp_path, _step(), config=other, max_steps=4, finished_is_a_result=True)


def test_a_nonfinite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDivergedError, match=r"the loss \(loss\) is nan at step 5.*latest\.pt \(step 4\)"):
        _train(tmp_path, _step(nan_loss_at=5))
    saved = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert saved["step"] == 4 and _steps(tmp_path) == [1, 2, 3, 4]


def test_a_checkpoint_with_nan_weights_is_never_written(tmp_path):
    with pytest.raises(TrainingDivergedError, match=r"weights of \['model'\] are NaN or inf at step 4.*\(step 2\)"):
        _train(tmp_path, _step(poison_at=4))  # step 4 (due for a checkpoint) poisons the weights after its loss
    saved = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert saved["step"] == 2 and all(torch.isfinite(t).all() for t in saved["model"].values())


def test_config_and_dataset_changes_are_listed_by_key():
    old = {"a": {"b": 1, "c": [1, 2]}, "meta": {"device": "cpu", "run_dir": "x"}}
    new = {"a": {"b": 2, "c": (1, 2)}, "meta": {"device": "cuda", "run_dir": "x"}, "d": 3}
    assert config_changes(old, new) == ["a.b: 1 -> 2"]  # "d": a setting of a newer version, not compared
    assert dataset_changes([DATASET], [DATASET]) == []
    assert dataset_changes(DATASET, {**DATASET, "sha256": "x"})


def test_trim_metrics_drops_later_steps_and_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n{"ste')
    assert trim_metrics(path, 2) == 2 and path.read_text() == '{"step": 1}\n{"step": 2}\n'
