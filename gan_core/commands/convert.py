"""gan3d convert: meshes and voxel files (or directories of them) -> one labelled npz or HDF5 voxel set.

HDF5 output is written as it goes, so converting a large collection needs memory for one batch only;
npz output is assembled in memory (npz cannot be appended to).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from gan_core.commands._common import progress
from gan_core.errors import BadFileError, BadInputError, Gan3dError

HELP = "convert meshes/voxel files (or directories of them) into one npz or HDF5 voxel set"
EXAMPLE = "gan3d convert ModelNet10/ --out modelnet10_32.h5 --resolution 32 --label-from-dir"

OUT_SUFFIXES = (".h5", ".hdf5", ".npz")
# ModelNet keeps shapes in <class>/<split>/<file>: the split directory never names the class.
SPLIT_DIRS = {"train", "test", "val", "valid", "validation", "training", "testing"}
BATCH = 64


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="IN",
                   help="files or directories (searched recursively) of .binvox .off .obj .stl .ply .glb .gltf .3mf .mat .npy "
                        "(one grid or a stack), and existing .npz/.h5 sets, which are merged with their labels")
    p.add_argument("--out", required=True, help="output set: .h5/.hdf5 (streamed, lazy to read) or .npz")
    p.add_argument("--resolution", type=int, default=32, choices=[16, 32, 64, 128], help="grid size R")
    p.add_argument("--label-from-dir", action="store_true",
                   help="class = parent directory name, skipping split dirs (ModelNet: chair/train/x.off -> chair);"
                        " otherwise every single-shape file gets class 'shape'")
    # Own dest: 'verbose' is the global flag that also turns on debug logging of every library.
    p.add_argument("-v", "--verbose", dest="list_failures", action="store_true",
                   help="list every file that failed, with the reason (as does gan3d -v)")


def class_from_path(path: Path) -> str:
    """The class a file belongs to by its directory: chair/train/chair_0001.off -> 'chair'."""
    parent = path.parent
    if parent.name.lower() in SPLIT_DIRS and parent.parent.name:
        parent = parent.parent
    return parent.name or "shape"


def run(args: argparse.Namespace) -> int:
    from gan_core.data.importers import SET_SUFFIXES, find_voxel_files

    out = Path(args.out)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise BadInputError(f"--out must end in {', '.join(OUT_SUFFIXES)}, got {out.name!r}")
    out_resolved = out.resolve()
    files = [f for f in find_voxel_files(args.inputs) if f.resolve() != out_resolved]
    if not files:
        raise BadFileError(f"no supported files in {', '.join(args.inputs)} (looked for .binvox, .off, .obj, "
                           ".stl, .ply, .glb, .gltf, .3mf, .mat, .npy, .npz, .h5)")

    classes: list[str] = []
    failures: list[tuple[Path, str]] = []
    counted = {"files": 0, "shapes": 0}

    def label_of(name: str) -> int:
        if name not in classes:
            classes.append(name)
        return classes.index(name)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        pending: list[tuple[np.ndarray, int]] = []
        for path in progress(files, total=len(files), desc="converting", unit="file"):
            try:
                if path.suffix.lower() == ".npy" and _is_set(path):  # an unlabelled stack of grids
                    name = class_from_path(path) if args.label_from_dir else "shape"
                    for vox in _read_npy_stack(path, args.resolution):
                        counted["shapes"] += len(vox)
                        yield vox, np.full(len(vox), label_of(name), np.int64)
                elif path.suffix.lower() in SET_SUFFIXES and _is_set(path):
                    # Shapes yielded before a read error in a corrupt set are kept (and counted).
                    for vox, names in _read_set(path, args.resolution):
                        counted["shapes"] += len(vox)
                        yield vox, np.array([label_of(c) for c in names], np.int64)
                else:
                    grid = _load_one(path, args.resolution)
                    pending.append((grid, label_of(class_from_path(path) if args.label_from_dir else "shape")))
                    counted["shapes"] += 1
                counted["files"] += 1
            except Gan3dError as e:
                failures.append((path, str(e)))
            if len(pending) >= BATCH:
                yield _stack(pending)
                pending = []
        if pending:
            yield _stack(pending)

    try:
        if out.suffix.lower() == ".npz":
            from gan_core.data.dataset import save_voxel_npz

            parts = list(batches())
            if parts:
                save_voxel_npz(out, np.concatenate([v for v, _ in parts]), np.concatenate([lab for _, lab in parts]),
                               classes)
        else:
            from gan_core.data.dataset import write_h5_dataset

            write_h5_dataset(out, batches(), classes=classes, resolution=args.resolution)
    except BadInputError:
        if counted["shapes"]:
            raise
    if not counted["shapes"]:
        first = failures[0][1] if failures else "no shapes in the inputs"
        raise BadFileError(f"none of the {len(files)} input files could be converted; first error: {first}")
    _report_failures(failures, len(files), args.list_failures or getattr(args, "verbose", False))
    print(json.dumps({"out": str(out), "shapes": counted["shapes"], "files": counted["files"],
                      "failed": len(failures), "resolution": args.resolution, "classes": classes}))
    return 0


def _is_set(path: Path) -> bool:
    """An npz/h5 'voxels' array or an .npy with N grids is a set to merge; a single 3D grid is one shape."""
    from gan_core.data.importers import voxel_array_shape

    return len(voxel_array_shape(path)) in (4, 5)


def _read_npy_stack(path: Path, resolution: int) -> Iterator[np.ndarray]:
    """Batches of grids from an (N, R, R, R) or (N, 1, R, R, R) .npy, validated one by one."""
    from gan_core.data.importers import load_voxels, voxel_array_shape

    n = voxel_array_shape(path)[0]
    for start in range(0, n, BATCH):
        yield np.stack([load_voxels(path, resolution, index=i) for i in range(start, min(start + BATCH, n))])


def _read_set(path: Path, resolution: int) -> Iterator[tuple[np.ndarray, list[str]]]:
    """Batches of (voxels, class names) from an existing set, read lazily."""
    from gan_core.data.dataset import VoxelDataset

    try:
        ds = VoxelDataset(path, resolution=resolution)
    except BadInputError as e:
        raise BadFileError(f"{path}: {e}") from None
    try:
        for start in range(0, len(ds), 256):
            rows = np.arange(start, min(start + 256, len(ds)))
            try:
                vox = ds.read(rows)
            except OSError as e:  # a corrupt HDF5 chunk
                raise BadFileError(f"{path}: cannot read shapes {rows[0]}..{rows[-1]} ({e})") from None
            yield vox, [ds.class_names[i] for i in ds.labels[rows]]
    finally:
        ds.close()


def _load_one(path: Path, resolution: int) -> np.ndarray:
    from gan_core.data.importers import load_voxels

    try:
        return load_voxels(path, resolution)
    except BadInputError as e:  # e.g. a stacked .npy without an index: a problem of this file
        raise BadFileError(f"{path}: {e}") from None


def _stack(pending: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([g for g, _ in pending]), np.array([lab for _, lab in pending], np.int64)


def _report_failures(failures: list[tuple[Path, str]], total: int, verbose: bool) -> None:
    if not failures:
        return
    hint = "" if verbose else "; --verbose lists them"
    print(f"warning: skipped {len(failures)} of {total} files that could not be read{hint}", file=sys.stderr)
    if verbose:
        for _, message in failures:
            print(f"  {message}", file=sys.stderr)
