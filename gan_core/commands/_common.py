"""Argument helpers shared by subcommands: existing-file checks, seed lists, progress bars, model and
training flags."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Iterable, TypeVar

from gan_core.errors import BadFileError, BadInputError

T = TypeVar("T")


def add_precision_arg(p: argparse.ArgumentParser, what: str = "inference") -> None:
    """--precision, one help text for every command."""
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help=f"{what} precision (auto: bf16 on CPUs where it measures faster than fp32, else fp32, "
                        "which a CUDA GPU runs on TF32 tensor cores; bf16 pays on a GPU only for large batches)")


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
    add_precision_arg(p, "inference")


def add_training_args(p: argparse.ArgumentParser, *, epochs: int) -> None:
    """The flags both trainers take (gan3d train, gan3d train-vae), with one meaning and default each (but
    ``--epochs``); a trainer adds its own around them."""
    p.add_argument("--data", required=True, help="voxel set (.npz or .h5) in the documented layout")
    p.add_argument("--out", required=True, help="run directory (config.json, metrics.jsonl, checkpoints)")
    p.add_argument("--profile", default="fast32", help="model profile: paper64, fast32, tiny16")
    p.add_argument("--classes", default=None, help="comma-separated class names to train on (default: all)")
    p.add_argument("--limit", type=int, default=None, help="use at most N shapes")
    p.add_argument("--epochs", type=int, default=epochs, help="train until this many epochs are complete")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size per process (profile: paper64 100 as the paper, fast32 64)")
    p.add_argument("--g-lr", type=float, default=None, help="generator learning rate (profile: the paper's 0.0025)")
    p.add_argument("--d-lr", type=float, default=None, help="discriminator learning rate (profile: the paper's 1e-5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data order and z (train-vae: also of the split)")
    add_device_args(p)
    add_precision_arg(p, "autocast")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="keep the default memory format (channels_last_3d is faster on CPU)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0, help="also save latest.pt this often")
    p.add_argument("--snapshot-every", type=int, default=5, help="keep epoch_NNNN.pt every N epochs")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in total")
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest.pt if it exists")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")


def training_config(config_class: type[T], args: argparse.Namespace) -> T:
    """A trainer's config dataclass from the parsed flags that name its fields (--classes split on commas)."""
    fields = {f.name for f in dataclasses.fields(config_class)}  # type: ignore[arg-type]
    kw = {k: v for k, v in vars(args).items() if k in fields}
    kw["classes"] = class_list(args.classes)
    return config_class(**kw)


def print_dry_run(cfg, **extra) -> None:  # type: ignore[no-untyped-def]
    """--dry-run: the resolved configuration and profile as JSON on stdout."""
    print(json.dumps({"config": dataclasses.asdict(cfg), **extra, "profile": cfg.resolved_profile().to_dict()},
                     indent=2))


def load_model_from_args(args: argparse.Namespace):  # -> gan_core.runtime.Model
    from gan_core.runtime import load_model

    if args.checkpoint and not Path(args.checkpoint).exists() and str(args.checkpoint).endswith(".pt"):
        raise BadFileError(f"--checkpoint {args.checkpoint}: no such file")
    return load_model(args.checkpoint, device=args.device, precision=args.precision)


# What write_shapes' caller holds per voxel: the float32 occupancy and the uint8 copies on the way to the file.
OUTPUT_BYTES_PER_VOXEL = 7


def check_output_size(model, n: int, flag: str, *, hint: str, probabilities: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Refuse up front (before z or any shape is made) a command whose ``n`` shapes and their z, written with
    write_shapes, cannot fit in memory: one line with the limit, ``hint`` and the way to raise the limit."""
    from gan_core.memory import check_memory

    per_shape = model.resolution**3 * (OUTPUT_BYTES_PER_VOXEL + 2 * probabilities) + 4 * model.profile.z_dim
    check_memory(n * per_shape, f"{flag} {n} ({n} shapes of {model.resolution}^3)", hint=hint)


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
