"""Argument helpers shared by subcommands: existing-file checks, seed lists, progress bars."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable, TypeVar

from gan_core.errors import BadFileError, BadInputError

T = TypeVar("T")


def existing_file(path: str | Path, flag: str) -> Path:
    """The path if it is a readable file; otherwise a BadFileError naming the flag."""
    p = Path(path)
    if not p.exists():
        raise BadFileError(f"{flag} {p}: no such file")
    if not p.is_file():
        raise BadFileError(f"{flag} {p}: not a file")
    return p


def parse_int_list(text: str, flag: str = "--seeds") -> list[int]:
    """'0,3-5' -> [0, 3, 4, 5] (stylegan3's seed lists); non-negative integers."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                a, b = part.split("-", 1)
                out.extend(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise BadInputError(f"{flag}: expected integers like '0,3-7', got {text!r}") from None
    if not out:
        raise BadInputError(f"{flag}: empty list")
    return out


def class_list(text: str | None) -> list[str] | None:
    """'chair,sofa' -> ['chair', 'sofa']; None or '' -> None (all classes)."""
    if not text:
        return None
    return [c.strip() for c in text.split(",") if c.strip()] or None


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it") -> Iterable[T]:
    """A tqdm progress bar on stderr, silent when stderr is not a terminal and GAN3D_PROGRESS is unset."""
    import os

    from tqdm import tqdm

    disable = not (sys.stderr.isatty() or os.environ.get("GAN3D_PROGRESS"))
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable, dynamic_ncols=True)


def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """--checkpoint / --model / --device / --precision, shared by every command that runs a model."""
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file or bundled model name (default: the bundled default model)")
    add_device_args(p)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="inference precision (auto: bf16 on CPU and recent GPUs)")


def load_model_from_args(args: argparse.Namespace):  # -> gan_core.runtime.Model
    from gan_core.runtime import load_model

    if args.checkpoint and not Path(args.checkpoint).exists() and str(args.checkpoint).endswith(".pt"):
        raise BadFileError(f"--checkpoint {args.checkpoint}: no such file")
    return load_model(args.checkpoint, device=args.device, precision=args.precision)


def write_shapes(out: Path, occupancy, z, *, level: float = 0.5, meshes: str | None = None, fmt: str = "stl",
                 probabilities: bool = False, model=None, **extra) -> None:
    """Write generated shapes: an npz (voxels uint8, z, extras) and optionally one mesh per shape."""
    import numpy as np

    from gan_core.io_utils import save_voxel_npz

    if out.suffix.lower() != ".npz":
        raise BadInputError(f"--out must end in .npz, got {out.name}")
    arrays = {"z": np.asarray(z, np.float32), **extra}
    if probabilities:
        arrays["probabilities"] = np.asarray(occupancy, np.float16)
    save_voxel_npz(out, (np.asarray(occupancy) > level).astype(np.uint8), **arrays)
    if meshes:
        from gan_core.mesh import export_mesh, voxels_to_mesh

        d = Path(meshes)
        for i, grid in enumerate(progress(occupancy, total=len(occupancy), desc="meshing", unit="shape")):
            export_mesh(voxels_to_mesh(grid, level=level), d / f"{out.stem}_{i:04d}.{fmt}")


def progress_callback(desc: str, unit: str = "step"):  # -> Callable[[int, int], None]
    """A ``progress(done, total)`` callback (the form library functions take) drawing a bar like :func:`progress`."""
    bar = progress(iter(()), total=0, desc=desc, unit=unit)

    def report(done: int, total: int) -> None:
        bar.total = total  # type: ignore[attr-defined]
        bar.n = done  # type: ignore[attr-defined]
        bar.refresh()  # type: ignore[attr-defined]
        if done >= total:
            bar.close()  # type: ignore[attr-defined]

    return report


def add_bank_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bank", default=None,
                   help="feature bank (.h5) made with the model's discriminator (default: the bundled model's bank)")
    p.add_argument("--cache", default=None,
                   help="folder caching slow results (default: $GAN3D_CACHE_DIR or ~/.cache/gan3d); 'none' to skip")


def load_bank_from_args(args: argparse.Namespace, model):  # -> gan_core.features.FeatureBank
    """--bank, or the bundled model's bank when neither --bank nor --checkpoint is given; checked against model."""
    from gan_core.runtime import find_model, load_bank

    if args.bank:
        return load_bank(existing_file(args.bank, "--bank"), model)
    if args.checkpoint:
        raise BadInputError("--bank is needed with --checkpoint (build one with gan3d features)")
    return load_bank(find_model(need="bank").bank, model)


def cache_from_args(args: argparse.Namespace) -> Path | None:
    """The --cache folder, None for 'none' (then results are computed and not kept)."""
    from gan_core.io_utils import cache_dir

    if args.cache and args.cache.lower() == "none":
        return None
    return Path(args.cache) if args.cache else cache_dir()
