"""Device names in configs (``"auto"`` means CUDA when present, else the CPU) and mixed precision."""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Literal

import torch

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def is_device_name(name: str) -> bool:
    """Whether ``name`` is a device a config may name: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    return isinstance(name, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name) is not None


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; any other name is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device | str, precision: str = "fp32") -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device``'s type at ``precision`` (``"bf16"`` or ``"fp16"``); ``"fp32"``:
    no autocast. Callers that use reduced precision on CUDA only pass ``"fp32"`` elsewhere."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[precision])


def cuda_precision(device: torch.device, precision: str) -> str:
    """``precision`` on CUDA, ``"fp32"`` on any other device (the trainers' and encoders' rule:
    reduced precision is a CUDA speed-up, the CPU stays exact)."""
    return precision if device.type == "cuda" else "fp32"


@functools.cache
def cpu_has_bf16() -> bool:
    """The CPU computes bfloat16 natively (AVX-512 BF16 or AMX, from ``/proc/cpuinfo``): only there is
    bf16 autocast on the CPU a speed-up rather than an emulation."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def train_precision(device: torch.device, bf16: bool, cpu_bf16: bool = False) -> str:
    """The trainers' autocast precision: bf16 on CUDA when ``bf16``; on the CPU only when ``cpu_bf16``
    and the CPU has native bf16 (:func:`cpu_has_bf16`); fp32 otherwise."""
    if device.type == "cuda":
        return "bf16" if bf16 else "fp32"
    return "bf16" if device.type == "cpu" and cpu_bf16 and cpu_has_bf16() else "fp32"
