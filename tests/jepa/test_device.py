"""Device names and the one autocast helper."""

import pytest
import torch

from jepa.device import autocast, cuda_precision, is_device_name


def test_autocast_runs_reduced_precision_only_when_asked():
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with autocast("cpu", "fp32"):
        assert (a @ b).dtype == torch.float32
    with autocast(torch.device("cpu"), "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        autocast("cpu", "int8")


def test_cuda_precision_keeps_the_cpu_exact():
    assert cuda_precision(torch.device("cpu"), "bf16") == "fp32"
    assert cuda_precision(torch.device("cuda"), "bf16") == "bf16"


def test_device_names():
    assert all(is_device_name(n) for n in ("auto", "cpu", "cuda", "cuda:3", "mps"))
    assert not any(is_device_name(n) for n in ("gpu", "cuda:", "cpu0", "", None))


def test_training_precision_uses_bf16_on_a_cpu_only_when_asked_and_native(monkeypatch):
    import torch

    from jepa import device as dev

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert dev.train_precision(cuda, bf16=True) == "bf16" and dev.train_precision(cuda, bf16=False) == "fp32"
    monkeypatch.setattr(dev, "cpu_has_bf16", lambda: True)
    assert dev.train_precision(cpu, bf16=True) == "fp32"               # CUDA's flag does not touch the CPU
    assert dev.train_precision(cpu, bf16=True, cpu_bf16=True) == "bf16"
    monkeypatch.setattr(dev, "cpu_has_bf16", lambda: False)
    assert dev.train_precision(cpu, bf16=True, cpu_bf16=True) == "fp32"  # emulated bf16 would be slower
