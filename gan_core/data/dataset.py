"""Voxel datasets over the two documented layouts: the reader (VoxelDataset) and the writers
(:func:`save_voxel_npz`, :func:`write_h5_dataset`), held to the same checks.

* ``.npz``: arrays ``voxels`` (N, R, R, R) uint8 in {0, 1}, ``labels`` (N,) int64, ``classes`` (C,) str.
  Read whole into memory (npz cannot be memory-mapped); fine up to a few GB.
* ``.h5`` / ``.hdf5``: the same three datasets, ``voxels`` chunked one shape per chunk (lzf-compressed) so a
  reader pulls single shapes cheaply; read lazily, a batch at a time, so sets larger than RAM train with flat
  memory. ``classes`` is a UTF-8 variable-length string dataset. Written streaming, so sets larger than RAM
  can be written too.

Both are held to the same checks (gan_core.voxel_checks) when opened, before any voxel data is read: grids
of MIN_GRID^3 to MAX_GRID^3, numeric, finite (a float HDF5 set is scanned once, a batch at a time), an HDF5
dataset actually written, and what is read whole (an npz, HDF5 labels) within gan_core.memory's limit.
Axis 2 is up. Occupancy is 1 inside the shape: integers > 0, floats > 0.5.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from gan_core.data.resample import resample
from gan_core.errors import BadFileError, BadInputError
from gan_core.files import atomic_path, npz_header, open_npz
from gan_core.guarded_h5 import atomic_h5, check_hdf5_heaps
from gan_core.memory import check_memory
from gan_core.voxel_checks import binarize_voxels, check_h5_voxels, check_voxel_layout

H5_SUFFIXES = (".h5", ".hdf5")
H5_FORMAT_VERSION = 1
_HEAP_CHECK_MAX_BYTES = 256 << 20  # check_hdf5_heaps reads the whole file: ~0.1 s at this size
_SCAN_BATCH = 256  # shapes per read when a float HDF5 set is scanned for NaN
_BYTES_PER_SHAPE = 16  # what opening a set keeps per shape (row index and label, int64)


class VoxelDataset:
    """A labelled set of voxel grids, optionally filtered by class, limited, and resampled.

    Parameters
    ----------
    path : npz or HDF5 file in the layout above.
    classes : keep only these class names (None keeps all).
    limit : keep at most this many shapes (the first ones after class filtering).
    resolution : resample every grid to this size (e.g. 64 from 32); None keeps the stored one.

    ``read(indices)`` returns uint8 grids (B, R, R, R); ``labels`` holds the labels of the kept shapes as
    indices into ``class_names`` (the file's full list, so labels stay comparable across filters).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        classes: Sequence[str] | None = None,
        limit: int | None = None,
        resolution: int | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise BadFileError(f"{self.path}: no such file")
        self._h5 = None
        self._voxels: np.ndarray | None = None
        suffix = self.path.suffix.lower()
        if suffix == ".npz":
            labels, class_names, stored_res = self._open_npz()
        elif suffix in H5_SUFFIXES:
            labels, class_names, stored_res = self._open_h5()
        else:
            raise BadFileError(f"{self.path}: unknown dataset format {suffix!r}; use .npz or .h5")
        self.class_names: list[str] = class_names
        self.stored_resolution = stored_res
        self.resolution = int(resolution or stored_res)
        if self.resolution not in (16, 32, 64, 128):
            raise BadInputError(f"resolution must be 16, 32, 64 or 128, got {self.resolution}")
        keep = np.arange(len(labels))
        if classes:
            unknown = [c for c in classes if c not in class_names]
            if unknown:
                raise BadInputError(f"unknown class {unknown[0]!r} in {self.path.name}; known: {', '.join(class_names)}")
            wanted = [class_names.index(c) for c in classes]
            keep = keep[np.isin(labels, wanted)]
        if limit is not None:
            if limit < 1:
                raise BadInputError(f"--limit must be >= 1, got {limit}")
            keep = keep[:limit]
        if len(keep) == 0:
            raise BadInputError(f"{self.path.name}: no shapes left after filtering")
        self.indices = keep  # rows of the file
        self.labels = labels[keep].astype(np.int64)
        self.classes = list(classes) if classes else None
        self.limit = limit

    # -- opening -------------------------------------------------------------------------------------------
    def _open_npz(self) -> tuple[np.ndarray, list[str], int]:
        try:
            with open_npz(self.path) as f:
                if "voxels" not in f.files:
                    raise BadFileError(f"{self.path}: npz has no 'voxels' array (has: {', '.join(f.files)})")
                check_voxel_layout(*npz_header(f.zip, "voxels.npy"), self.path)  # before it inflates
                vox = binarize_voxels(f["voxels"], self.path)
                n = len(vox)
                labels = f["labels"] if "labels" in f.files else np.zeros(n, np.int64)
                names = f["classes"] if "classes" in f.files else np.array(["shape"])
                if names.ndim != 1:
                    raise BadFileError(f"{self.path}: 'classes' must be a list of names, got shape {names.shape}")
                classes = [str(c) for c in names]
        except BadFileError:
            raise
        except Exception as e:  # zipfile.BadZipFile, ValueError (pickled objects), OSError, EOFError
            raise BadFileError(f"{self.path}: not a readable npz file ({type(e).__name__}: {e})") from None
        self._voxels = vox
        return _check_labels(labels, classes, n, self.path), classes, vox.shape[1]

    def _open_h5(self) -> tuple[np.ndarray, list[str], int]:
        import h5py

        if self.path.stat().st_size <= _HEAP_CHECK_MAX_BYTES:  # larger sets are read lazily: no full scan
            check_hdf5_heaps(self.path)
        try:
            h5 = h5py.File(self.path, "r")
        except OSError as e:
            raise BadFileError(f"{self.path}: not a readable HDF5 file ({str(e).splitlines()[0]})") from None
        try:
            vox = h5.get("voxels")
            if not isinstance(vox, h5py.Dataset):
                raise BadFileError(f"{self.path}: HDF5 file has no 'voxels' dataset")
            n = check_h5_voxels(vox, self.path)[0]
            check_memory(n * _BYTES_PER_SHAPE, f"{self.path}: indexing its {n} shapes", error=BadFileError,
                         hint="split the set into smaller files")
            labels = _h5_array(h5, "labels", self.path)
            labels = np.zeros(n, np.int64) if labels is None else labels
            names = _h5_array(h5, "classes", self.path)
            names = np.array(["shape"]) if names is None else names
            if names.ndim != 1:
                raise BadFileError(f"{self.path}: 'classes' must be a list of names, got shape {names.shape}")
            classes = [c.decode() if isinstance(c, bytes) else str(c) for c in names]
            labels = _check_labels(labels, classes, n, self.path)
            if vox.dtype.kind == "f":  # the npz check for NaN and Inf, a batch at a time: flat memory
                for s in range(0, n, _SCAN_BATCH):
                    binarize_voxels(vox[s:s + _SCAN_BATCH], self.path)
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as e:  # h5py on damaged metadata
            h5.close()
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise BadFileError(f"{self.path}: damaged HDF5 file ({type(e).__name__}: {reason})") from None
        except BaseException:
            h5.close()
            raise
        self._h5 = h5
        return labels, classes, vox.shape[1]

    # -- access --------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indices)

    def read(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Grids at ``positions`` (0 <= p < len(self)) as uint8 (B, R, R, R) in {0, 1}, in the given order."""
        pos = np.asarray(positions, dtype=np.int64)
        rows = self.indices[pos]
        itemsize = 1 if self._voxels is not None else self._h5["voxels"].dtype.itemsize  # type: ignore[index]
        r = max(self.resolution, self.stored_resolution)
        # the rows read, their reordered copy, the uint8 grids and their resampled copy
        check_memory(len(rows) * r**3 * (2 * itemsize + 2), f"{self.path}: reading {len(rows)} shapes at once",
                     hint="read fewer at a time (chunks())")
        if self._voxels is not None:
            vox = self._voxels[rows]  # binarised when opened
        else:
            # h5py wants increasing, unique indices: read sorted, then restore the requested order.
            uniq, inverse = np.unique(rows, return_inverse=True)
            try:
                vox = self._h5["voxels"][uniq][inverse]  # type: ignore[index]
            except (OSError, KeyError, RuntimeError, ValueError, TypeError) as e:  # damaged chunks: seen on read
                reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                raise BadFileError(f"{self.path}: cannot read shapes {uniq[:5].tolist()} ({reason}); "
                                   "the file is damaged") from None
            vox = binarize_voxels(vox, self.path)
        if self.resolution != self.stored_resolution:
            vox = resample(vox, self.resolution)
        return vox

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.read([i])[0], int(self.labels[i])

    def chunks(self, positions: Sequence[int] | np.ndarray | None = None,
               size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(positions, grids) for ``positions`` (default: all), ``size`` at a time and in order: a pass over a
        whole set that never holds it in memory."""
        pos = np.arange(len(self)) if positions is None else np.asarray(positions, dtype=np.int64)
        for s in range(0, len(pos), size):
            yield pos[s:s + size], self.read(pos[s:s + size])

    def voxel_counts(self, positions: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Occupied voxels (N,) int64 of each shape at ``positions`` (default: all), read in chunks."""
        counts = [vox.reshape(len(vox), -1).sum(1, dtype=np.int64) for _, vox in self.chunks(positions)]
        return np.concatenate(counts) if counts else np.zeros(0, np.int64)

    def content_hash(self) -> str:
        """sha256 of the file plus the selection: a checkpoint records it to notice a changed data set."""
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(repr((self.classes, self.limit, self.resolution)).encode())
        return h.hexdigest()

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __repr__(self) -> str:
        return f"VoxelDataset({self.path.name!r}, n={len(self)}, resolution={self.resolution})"


def _h5_array(h5, name: str, path: Path) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    """Dataset ``name`` read whole (None if absent), once its declared size passed check_memory."""
    import h5py

    if name not in h5:
        return None
    if not isinstance(h5[name], h5py.Dataset):
        raise BadFileError(f"{path}: '{name}' must be a dataset, not a group")
    ds = h5[name]
    check_memory(ds.size * ds.dtype.itemsize, f"{path}: reading '{name}' {ds.shape}",
                 hint="repair or rewrite the file", error=BadFileError)
    try:
        return np.asarray(h5[name][()])
    except (OSError, ValueError, TypeError) as e:
        raise BadFileError(f"{path}: cannot read '{name}' ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def _check_labels(labels: np.ndarray, classes: list[str], n: int, path: Path) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise BadFileError(f"{path}: 'labels' must be {n} integers, got shape {labels.shape} dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= len(classes)):
        raise BadFileError(f"{path}: labels must index 'classes' (0..{len(classes) - 1})")
    return labels.astype(np.int64)


# -- writers ------------------------------------------------------------------------------------------------
def _as_voxel_stack(voxels: np.ndarray) -> np.ndarray:
    """The readers' checks (gan_core.voxel_checks), so a writer never makes a file they refuse."""
    vox = np.asarray(voxels)
    check_voxel_layout(vox.shape, vox.dtype, error=BadInputError)
    return binarize_voxels(vox, error=BadInputError)


def _check_labels_classes(labels: np.ndarray, classes: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    lab = np.asarray(labels)
    if lab.shape != (n,) or (n and lab.dtype.kind not in "iu"):
        raise BadInputError(f"labels must be {n} integers, got shape {lab.shape} dtype {lab.dtype}")
    names = [str(c) for c in classes]
    if not names:
        raise BadInputError("classes must name at least one class")
    if len(set(names)) != len(names):
        raise BadInputError(f"class names must be unique, got {names}")
    if n and (lab.min() < 0 or lab.max() >= len(names)):
        raise BadInputError(f"labels must index classes (0..{len(names) - 1}), got {lab.min()}..{lab.max()}")
    return lab.astype(np.int64), np.array(names, dtype=str)


def save_voxel_npz(
    path: str | Path,
    voxels: np.ndarray,
    labels: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    **extra_arrays: np.ndarray,
) -> Path:
    """Write a voxel set in the npz layout, atomically and compressed.

    Parameters
    ----------
    path : str or Path
        Target ``.npz`` file.
    voxels : ndarray (N, R, R, R)
        Occupancy; bool/int grids are stored as ``> 0``, float grids as ``> 0.5``, both as uint8.
    labels : ndarray (N,) of int, optional
        Class indices into ``classes``; all zeros when omitted.
    classes : sequence of str, optional
        Class names; ``["shape"]`` when omitted.
    **extra_arrays
        Further arrays stored under their keyword (e.g. ``z`` for generated shapes).

    Returns
    -------
    Path
        ``path``.
    """
    vox = _as_voxel_stack(voxels)
    n = len(vox)
    lab, names = _check_labels_classes(np.zeros(n, np.int64) if labels is None else labels, ["shape"] if classes is None else list(classes), n)
    clash = {"voxels", "labels", "classes"} & extra_arrays.keys()
    if clash:
        raise BadInputError(f"extra array names clash with the layout: {sorted(clash)}")
    arrays = {"voxels": vox, "labels": lab, "classes": names, **{k: np.asarray(v) for k, v in extra_arrays.items()}}
    if any(a.dtype == object for a in arrays.values()):
        raise BadInputError("object arrays cannot be stored without pickling; convert them to numbers or str")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # A file object stops numpy from appending '.npz' to the temporary name.
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    return Path(path)


VoxelBatches = Iterable[tuple[np.ndarray, np.ndarray]]


def write_h5_dataset(
    path: str | Path,
    voxels: np.ndarray | VoxelBatches,
    labels: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    resolution: int | None = None,
) -> int:
    """Write a voxel set as HDF5, streaming so sets larger than RAM can be written.

    Parameters
    ----------
    path : str or Path
        Target ``.h5`` file, replaced atomically when the write completes.
    voxels : ndarray (N, R, R, R) or iterable of (voxels (B, R, R, R), labels (B,))
        Either a whole array (then ``labels`` gives its labels) or batches, which are appended one at a
        time to resizable datasets. Grids of another size are resampled to ``resolution``.
    labels : ndarray (N,) of int, optional
        Labels for an array input (zeros when omitted); must be None for batch input.
    classes : sequence of str, optional
        Class names (``["shape"]`` when omitted). Read after the batches are consumed, so a generator
        may append names to the list it was given while it runs.
    resolution : int, optional
        Grid size R stored; taken from the first batch when omitted.

    Returns
    -------
    int
        The number of shapes written.
    """
    import h5py

    if isinstance(voxels, np.ndarray):
        n = len(voxels) if voxels.ndim else 0
        batches: VoxelBatches = [(voxels, np.zeros(n, np.int64) if labels is None else np.asarray(labels))]
    else:
        if labels is not None:
            raise BadInputError("labels must come inside the batches when voxels is an iterable")
        batches = voxels
    class_list = classes if classes is not None else ["shape"]
    written = 0
    with atomic_h5(path) as h5:
        vox_ds = lab_ds = None
        for vox_batch, lab_batch in batches:
            vox = _as_voxel_stack(vox_batch)
            lab = np.asarray(lab_batch)
            if lab.shape != (len(vox),) or (len(vox) and lab.dtype.kind not in "iu"):
                raise BadInputError(f"a batch of {len(vox)} shapes came with labels of shape {lab.shape}")
            if vox_ds is None:
                resolution = int(resolution or vox.shape[1])
                r = resolution
                vox_ds = h5.create_dataset(
                    "voxels", shape=(0, r, r, r), maxshape=(None, r, r, r), dtype=np.uint8,
                    chunks=(1, r, r, r), compression="lzf",
                )
                lab_ds = h5.create_dataset("labels", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
            if vox.shape[1] != resolution:
                vox = resample(vox, resolution)
            assert lab_ds is not None
            vox_ds.resize(written + len(vox), axis=0)
            vox_ds[written:] = vox
            lab_ds.resize(written + len(vox), axis=0)
            lab_ds[written:] = lab.astype(np.int64)
            written += len(vox)
        if vox_ds is None or written == 0:
            raise BadInputError(f"{path}: nothing to write (no shapes)")
        assert lab_ds is not None
        all_labels = lab_ds[()]
        _, names = _check_labels_classes(all_labels, class_list, written)
        h5.create_dataset("classes", data=names.tolist(), dtype=h5py.string_dtype("utf-8"))
        h5.attrs["resolution"] = int(resolution or 0)
        h5.attrs["gan3d_format"] = H5_FORMAT_VERSION
    return written
