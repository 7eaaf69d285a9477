"""Argument helpers shared by subcommands: existing-file checks, seed lists, progress bars, model and
training flags."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from gan_core.errors import BadFileError, BadInputError
from gan_core.run_config import DEVICE_HELP, PRECISIONS, RunConfig, comma_list, precision_help

T = TypeVar("T")

# --format of the commands that write meshes (gan_core.mesh.MESH_FORMATS without dots; not imported from there,
# which would load scipy at every start)
MESH_FORMAT_CHOICES = ["stl", "obj", "ply", "glb", "gltf", "3mf"]


def add_precision_arg(p: argparse.ArgumentParser, what: str = "inference") -> None:
    """--precision, one help text for every command (the trainers' comes from their run config)."""
    p.add_argument("--precision", default="auto", choices=list(PRECISIONS), help=precision_help(what))


def existing_file(path: str | Path, flag: str) -> Path:
    """The path if it is a readable file; otherwise a BadFileError naming the flag."""
    p = Path(path)
    if not p.exists():
        raise BadFileError(f"{flag} {p}: no such file")
    if not p.is_file():
        raise BadFileError(f"{flag} {p}: not a file")
    return p


def output_file(path: str | Path | None, flag: str, suffixes: Iterable[str]) -> Path | None:
    """Check an output path before any slow work (a model load, an optimisation): its suffix, and that it can
    be written (not a folder; its nearest existing folder writable, since missing folders are created).
    None passes through (the output was not asked for). A BadInputError / BadFileError naming the flag."""
    if path is None:
        return None
    p = Path(path)
    allowed = tuple(s.lower() for s in suffixes)
    if p.suffix.lower() not in allowed:
        raise BadInputError(f"{flag} must end in {', '.join(allowed)}, got {p.name or p}")
    if p.is_dir():
        raise BadFileError(f"{flag} {p}: is a folder, not a file")
    _check_writable_folder(p.parent, flag, p)
    return p


def output_dir(path: str | Path | None, flag: str) -> Path | None:
    """Check an output folder (created if missing) before any slow work, like :func:`output_file`."""
    if path is None:
        return None
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise BadFileError(f"{flag} {p}: is a file, not a folder")
    _check_writable_folder(p, flag, p)
    return p


def _check_writable_folder(folder: Path, flag: str, shown: Path) -> None:
    import tempfile

    here = folder if str(folder) else Path(".")
    while not here.exists():  # the folders to be created go under the nearest one that exists
        if here.parent == here:
            break
        here = here.parent
    if here.exists() and not here.is_dir():
        raise BadFileError(f"{flag} {shown}: {here} is a file, not a folder")
    try:  # a real probe, not os.access: root passes that, and a read-only file system fails only here
        with tempfile.TemporaryFile(dir=here):  # unnamed where the OS can (O_TMPFILE): nothing is left behind
            pass
    except OSError as e:
        raise BadFileError(f"{flag} {shown}: cannot write in {here} ({e.strerror or type(e).__name__})") from None


def add_size_arg(p: argparse.ArgumentParser) -> None:
    """--size-mm, for every command that writes meshes."""
    p.add_argument("--size-mm", type=float, default=None,
                   help="scale meshes so the shape's longest side is this many millimetres (STL, OBJ and PLY "
                        "carry no unit: slicers and CAD tools read millimetres; 3MF is in millimetres, glTF in "
                        "metres; default: no scaling, the whole voxel grid is 1 unit wide, 1 mm in a slicer)")


def check_size(size: float | None, flag: str = "--size-mm") -> float | None:
    import math

    if size is not None and not (math.isfinite(size) and size > 0):
        raise BadInputError(f"{flag} must be a positive number of millimetres, got {size}")
    return size


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


class_list = comma_list  # 'chair,sofa' -> ['chair', 'sofa']; None or '' -> None (all classes)


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it") -> Iterable[T]:
    """A tqdm progress bar on stderr, silent when stderr is not a terminal and GAN3D_PROGRESS is unset."""
    import os

    from tqdm import tqdm

    disable = not (sys.stderr.isatty() or os.environ.get("GAN3D_PROGRESS"))
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable, **_bar_size())


def _bar_size() -> dict[str, object]:
    """tqdm's size arguments: follow the terminal's size, or 80 x 24 where it reports none. A pseudo-terminal
    that has no size (0 rows or columns: ``script``, some IDE consoles and agents' shells) made tqdm print
    nothing at all, so long commands looked silent there."""
    import os

    try:
        cols, rows = os.get_terminal_size(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # not a terminal (piped with GAN3D_PROGRESS), or no fileno
        cols = rows = 0
    if cols > 0 and rows > 0:
        return {"dynamic_ncols": True}
    return {"ncols": cols or 80, "nrows": rows or 24}


class ProgressReport:
    """A ``progress(done, total)`` callback (the form library functions take) drawing a bar like
    :func:`progress`. The bar appears at the first report (work served from a cache draws none) and closes
    when ``done`` reaches ``total`` or at :meth:`close`. ``stage(done, total)``, if given, names what runs
    next (the bar's text after ``desc: ``), for work whose last step is long and uncounted (t-SNE)."""

    def __init__(self, desc: str, unit: str = "step", stage: Callable[[int, int], str] | None = None) -> None:
        self.desc, self.unit, self.stage = desc, unit, stage
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        desc = self.desc if self.stage is None else f"{self.desc}: {self.stage(done, total)}"
        if self.bar is None:
            self.bar = progress(iter(()), total=total, desc=desc, unit=self.unit)
        bar = self.bar
        bar.set_description_str(desc, refresh=False)
        bar.total = total
        bar.update(done - bar.n)  # update, not n =: tqdm's rate and time left follow the steps
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def progress_callback(desc: str, unit: str = "step",
                      stage: Callable[[int, int], str] | None = None) -> ProgressReport:
    """A :class:`ProgressReport`: pass it as a library function's ``progress``."""
    return ProgressReport(desc, unit, stage)


def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_model_args(p: argparse.ArgumentParser) -> None:
    """--checkpoint / --model / --device / --precision, shared by every command that runs a model."""
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file or bundled model name (default: the bundled default model)")
    add_device_args(p)
    add_precision_arg(p, "inference")


def add_training_args(p: argparse.ArgumentParser, config_class: type[RunConfig]) -> None:
    """A trainer's flags, made from its run config (gan_core.run_config): one per field that has a flag, in the
    fields' order, with the field's help, choices and default; then --dry-run."""
    for f, flag, value_type in config_class.flags():
        name = flag.name or "--" + f.name.replace("_", "-")
        default = flag.default(f)
        kw: dict[str, Any] = {"dest": f.name, "help": flag.help}
        if default is dataclasses.MISSING:
            kw["required"] = True
        elif value_type is bool:  # a switch: on, or off where the field is on by default
            kw.update(action="store_false" if default else "store_true")
            if default is None:
                kw["default"] = None
        else:
            kw["default"] = default
        if value_type is not bool:
            kw["type"] = flag.type or value_type
            if flag.choices is not None:
                kw["choices"] = list(flag.choices)
        p.add_argument(name, **kw)
        if flag.off:
            p.add_argument(flag.off, dest=f.name, action="store_false", help=flag.off_help)
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")


def training_config(config_class: type[T], args: argparse.Namespace) -> T:
    """A trainer's run config from the parsed flags that name its fields."""
    fields = {f.name for f in dataclasses.fields(config_class)}  # type: ignore[arg-type]
    return config_class(**{k: v for k, v in vars(args).items() if k in fields})


def print_dry_run(cfg, **extra) -> None:  # type: ignore[no-untyped-def]
    """--dry-run: the resolved configuration and profile as JSON on stdout."""
    print(json.dumps({"config": dataclasses.asdict(cfg), **extra, "profile": cfg.resolved_profile().to_dict()},
                     indent=2))


def load_model_from_args(args: argparse.Namespace):  # -> gan_core.model.Model
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
                 probabilities: bool = False, model=None, size_mm: float | None = None, **extra) -> None:
    """Write generated shapes: an npz (voxels uint8, z, extras) and optionally one mesh per shape (its longest
    side ``size_mm`` long when given)."""
    import numpy as np

    from gan_core.data.dataset import save_voxel_npz

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
            export_mesh(voxels_to_mesh(grid, level=level), d / f"{out.stem}_{i:04d}.{fmt}", size=size_mm)


BANK_HELP = ("feature bank (.h5) made with the model's discriminator, or the name of a bundled model whose bank to "
             "use (e.g. fast32_modelnet10)")


def add_bank_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bank", default=None, help=f"{BANK_HELP} (default: the bundled model's bank)")
    p.add_argument("--cache", default=None,
                   help="folder caching slow results (default: $GAN3D_CACHE_DIR or ~/.cache/gan3d); 'none' to skip")


def bank_path(spec: str, flag: str = "--bank") -> Path:
    """A feature bank file, or the bank of the bundled model named ``spec``; one error line naming both
    readings when it is neither."""
    from gan_core.errors import Gan3dError
    from gan_core.runtime import list_models

    p = Path(spec)
    if p.exists() or p.suffix.lower() in (".h5", ".hdf5"):
        return existing_file(p, flag)
    try:
        models = list_models()
    except Gan3dError:
        models = []
    entry = next((m for m in models if m.name == spec), None)
    if entry is None:
        with_bank = ", ".join(m.name for m in models if m.bank is not None) or "none installed"
        raise BadFileError(f"{flag} {spec}: no such file, and no bundled model of that name has a bank "
                           f"(bundled banks: {with_bank})")
    if entry.bank is None:
        raise BadFileError(f"{flag} {spec}: the bundled model {spec} has no feature bank (gan3d features "
                           "builds one)")
    return existing_file(entry.bank, flag)


def load_bank_from_args(args: argparse.Namespace, model):  # -> gan_core.features.FeatureBank
    """--bank (a file or a bundled model's name), or the bundled model's bank when neither --bank nor
    --checkpoint is given; checked against model."""
    from gan_core.runtime import find_model, load_bank

    if args.bank:
        return load_bank(bank_path(args.bank), model)
    if args.checkpoint:
        raise BadInputError("--bank is needed with --checkpoint (build one with gan3d features)")
    return load_bank(find_model(need="bank").bank, model)


def cache_from_args(args: argparse.Namespace) -> Path | None:
    """The --cache folder, None for 'none' (then results are computed and not kept)."""
    from gan_core.cache import cache_dir

    if args.cache and args.cache.lower() == "none":
        return None
    return Path(args.cache) if args.cache else cache_dir()
