"""The one device picker: CUDA, then Apple MPS, then CPU; and the matching autocast settings."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

from gan_core.errors import BadInputError


def pick_device(preference: str | None = None) -> torch.device:
    """Return the device to run on.

    ``preference`` is "auto" (default, or the GAN3D_DEVICE environment variable), "cpu", "cuda", "cuda:N"
    or "mps". Asking for an accelerator that is not there is an error, not a silent fallback.
    """
    pref = (preference or os.environ.get("GAN3D_DEVICE") or "auto").lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError(f"device {pref!r} requested but CUDA is not available; use --device cpu")
    if pref == "mps" and not torch.backends.mps.is_available():
        raise BadInputError("device 'mps' requested but MPS is not available; use --device cpu")
    try:
        return torch.device(pref)
    except RuntimeError:
        raise BadInputError(f"unknown device {pref!r}; use auto, cpu, cuda, cuda:N or mps") from None


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16, AVX512 or AMX), not by emulation."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` ("fp32", "bf16", "fp16", "auto") on ``device``; None = fp32.

    "auto" is bf16 on CUDA GPUs that support it and on CPUs with native bf16 (AVX512-BF16 or AMX: about 2x
    faster than fp32), fp16 on older CUDA GPUs, and fp32 elsewhere: on a CPU without native bf16 (AVX2 only)
    PyTorch emulates it, and a fast32 training step takes minutes instead of seconds.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision != "auto":
        raise BadInputError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """torch.autocast on ``device`` with ``dtype``, or nothing when dtype is None."""
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def describe(device: torch.device) -> str:
    """A short human name for the status bar and --version: "CPU (2 threads)", "CUDA: NVIDIA H100"."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "MPS (Apple GPU)"
    return f"CPU ({torch.get_num_threads()} threads)"
