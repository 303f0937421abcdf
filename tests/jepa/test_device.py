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
