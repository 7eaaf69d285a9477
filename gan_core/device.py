"""The one device picker: CUDA, then Apple MPS, then CPU; and the matching autocast settings."""

from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path
from typing import Callable, Iterator

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


_CPU_BF16_FASTER: bool | None = None  # measured once per machine by cpu_bf16_is_faster, then read from a file


def _conv_pair_ms(bf16: bool) -> float:
    """One generator-like transposed convolution and one discriminator-like convolution (fast32's heaviest
    layers at batch 4 and half their channels, channels_last_3d), in ms, with or without bf16 autocast."""
    import time

    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, 8, 8, 8, generator=g).contiguous(memory_format=torch.channels_last_3d)
    y = torch.randn(4, 32, 16, 16, 16, generator=g).contiguous(memory_format=torch.channels_last_3d)
    wt = torch.randn(64, 32, 4, 4, 4, generator=g)
    wc = torch.randn(64, 32, 4, 4, 4, generator=g)
    t = time.perf_counter()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        F.conv_transpose3d(x, wt, stride=2, padding=1)
        F.conv3d(y, wc, stride=2, padding=1)
    return (time.perf_counter() - t) * 1000


def _verdict_file() -> Path:
    """Where the bf16 verdicts are kept: $GAN3D_CACHE_DIR, else $XDG_CACHE_HOME/gan3d, else ~/.cache/gan3d (the
    caches' folder; spelled out here, since this module sits below the file helpers)."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan3d"
    return Path(os.environ.get("GAN3D_CACHE_DIR") or home) / "bf16-verdicts.json"


def _machine() -> str:
    """What the verdict depends on: the CPU (model name and flags) and the torch build."""
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        info = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith(("model name", "flags"))]
        cpu = " ".join(ln.split(":", 1)[1].strip() for ln in info[:2])  # the first CPU's
    return f"torch {torch.__version__}; {cpu}"


def _remembered(measure: Callable[[], bool]) -> bool:
    """The verdict for this machine from the file, else ``measure()``, kept there (best effort: a read-only or
    broken file only means measuring again)."""
    path, key = _verdict_file(), _machine()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), bool):
        return known[key]
    verdict = measure()
    with contextlib.suppress(OSError, TypeError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**(known if isinstance(known, dict) else {}), key: verdict}, indent=1))
        os.replace(tmp, path)  # whole or not at all, also with two processes measuring at once
    return verdict


def cpu_bf16_is_faster() -> bool:
    """Whether bf16 autocast beats fp32 on this CPU: measured once per machine (~120 ms; none without native
    bf16) and remembered in the cache folder (:func:`_verdict_file`), so an app launch does not pay for it.

    The CPU flag is not enough. With AVX512-BF16, bf16 ran the generator and a training step 2.5-3x faster than
    fp32 on an AMD EPYC, and 1.2-1.5x *slower* on an Intel Xeon (family 6, model 207, no AMX exposed): there
    the same two convolutions timed here took 1.5-1.7x longer in bf16 at batch 4. At batch 1 (about 1.5 ms a
    pair) one noisy sample picked bf16 on that Xeon (2026-11-28), so the pair runs at batch 4, best of 5,
    alternating, and bf16 must win by 20%."""
    global _CPU_BF16_FASTER
    if _CPU_BF16_FASTER is None:
        _CPU_BF16_FASTER = cpu_has_native_bf16() and _remembered(_measure_bf16_faster)
    return _CPU_BF16_FASTER


def _measure_bf16_faster() -> bool:
    _conv_pair_ms(False), _conv_pair_ms(True)  # warm-up: oneDNN builds its kernels
    best = {False: float("inf"), True: float("inf")}
    for _ in range(5):
        for bf16 in (False, True):
            best[bf16] = min(best[bf16], _conv_pair_ms(bf16))
    return best[True] < 0.8 * best[False]


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` ("fp32", "bf16", "fp16", "auto") on ``device``; None = fp32.

    "auto" is bf16 on CPUs where it measures faster than fp32 (:func:`cpu_bf16_is_faster`: some with native
    bf16), and fp32 elsewhere: on a CPU without native bf16 (AVX2 only) PyTorch emulates it, and a fast32 training
    step takes minutes instead of seconds. On CUDA GPUs fp32 runs the convolutions on TF32 tensor cores (cuDNN's
    default), and these networks are too small for bf16 autocast to pay for its casts: on an H200 it made a
    training step at batch 32 1.15x (fast32) and 1.3x (paper64) slower and batch-1 generation 1.4x slower; only
    generating 64 shapes at once ran 2x faster (benchmarks/bench_gpu_variants.py, 2026-11-28). Ask for bf16 there.
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
        return torch.bfloat16 if cpu_bf16_is_faster() else None
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
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'' if n == 1 else 's'})"
