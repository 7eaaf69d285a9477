"""What the discriminator's units respond to (Wu et al. 2016, sec. 4.3, Figure 8): for a unit (one channel of
one of D's hidden blocks), the shapes of a set that excite it most, and the voxels that drive it.

* A unit's **response** to a shape is its activation maximised over space (the block's output channel, max
  pooled to one number): :func:`unit_responses` scores every unit of every layer in one pass over a set, a
  batch at a time, and :meth:`UnitResponses.top` ranks the shapes for one unit.
* The **heat map** of a shape (:func:`unit_heatmaps`) is the gradient of that response with respect to the
  input grid, (N, R, R, R) float32: positive where adding occupancy would raise the response. A max has one
  winner, so the gradient flows through the winning position only: the heat map covers that position's
  receptive field (22 voxels across for fast32's last block), the part of the shape the unit looks at.
  :func:`heat_mesh` and :func:`render_units` paint it on the shape's surface.

Layers are numbered as ``Discriminator.activations`` lists them: 0 is the block nearest the input. fast32 has
three: 0 (64 units at 16^3), 1 (128 at 8^3), 2 (256 at 4^3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from gan_core.device import autocast
from gan_core.errors import BadInputError, Gan3dError
from gan_core.d_features import prepare_voxels

if TYPE_CHECKING:
    import pyvista as pv

    from gan_core.models import Discriminator
    from gan_core.model import Model

# Heat colours: the shape's own light clay where the unit does not look, through orange to deep red where the
# voxels drive it most.
HEAT_COLOURS = ("#ddd5c9", "#f4a340", "#b2182b")


@dataclass(frozen=True)
class LayerInfo:
    """One hidden block of D: its index, number of units (channels), grid size of its output and the width
    (in input voxels) of one position's receptive field."""

    index: int
    units: int
    size: int
    receptive_field: int


def layer_infos(model: Model) -> list[LayerInfo]:
    """D's hidden blocks, nearest the input first (conv kernel 4, stride 2, padding 1 each)."""
    prof = model.profile
    out, size, rf, jump = [], prof.resolution, 1, 1
    for i, c in enumerate(prof.d_channels):
        size //= 2
        rf += 3 * jump  # kernel 4: three more input positions, ``jump`` apart
        jump *= 2
        out.append(LayerInfo(i, int(c), size, rf))
    return out


def check_unit(model: Model, layer: int, unit: int | None = None) -> LayerInfo:
    """The layer's info; a BadInputError naming the valid range when the layer or unit does not exist, or
    when the model has no discriminator."""
    _discriminator(model)
    infos = layer_infos(model)
    if not 0 <= layer < len(infos):
        raise BadInputError(f"layer {layer} is out of range: {model.name}'s discriminator has layers "
                            f"0-{len(infos) - 1} (0 is nearest the input)")
    info = infos[layer]
    if unit is not None and not 0 <= unit < info.units:
        raise BadInputError(f"unit {unit} is out of range: layer {layer} has units 0-{info.units - 1}")
    return info


def _discriminator(model: Model) -> Discriminator:
    if model.discriminator is None:
        raise Gan3dError(f"model {model.name!r} has no discriminator; use a full training checkpoint")
    return model.discriminator


@dataclass(frozen=True)
class TopShapes:
    """The shapes that excite one unit most: ``indices`` (k,) positions in the set, ``scores`` (k,) their
    responses, highest first (ties: the lower position first)."""

    layer: int
    unit: int
    indices: np.ndarray
    scores: np.ndarray


@dataclass
class UnitResponses:
    """Every unit's response to every shape of a set: ``maxima[layer]`` (N, units) float32. ``read`` (the
    set's ``read(positions) -> grids``, kept by :func:`unit_responses`) lets :meth:`top` skip duplicates."""

    layers: list[LayerInfo]
    maxima: dict[int, np.ndarray]
    read: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(next(iter(self.maxima.values()))) if self.maxima else 0

    def top(self, layer: int, unit: int, k: int = 8, *, distinct: bool = True) -> TopShapes:
        """The ``k`` shapes with the highest responses of the unit. ``distinct``: a shape whose grid equals
        a higher-ranked one's is skipped (sets hold copies: ModelNet10 has the same chair many times over,
        and copies score the same); needs ``read``."""
        if layer not in self.maxima:
            raise BadInputError(f"layer {layer} is out of range: scored layers are "
                                f"{', '.join(map(str, sorted(self.maxima)))}")
        col = self.maxima[layer]
        if not 0 <= unit < col.shape[1]:
            raise BadInputError(f"unit {unit} is out of range: layer {layer} has units 0-{col.shape[1] - 1}")
        if k < 1:
            raise BadInputError(f"k must be >= 1, got {k}")
        order = np.argsort(-col[:, unit], kind="stable")
        if distinct and self.read is not None:
            order = _first_distinct(order, self.read, k)
        order = order[:k]
        return TopShapes(layer, unit, order.astype(np.int64), col[order, unit].astype(np.float32))


def _first_distinct(order: np.ndarray, read: Callable[[np.ndarray], np.ndarray], k: int) -> np.ndarray:
    """The first ``k`` positions of ``order`` whose grids differ from every earlier kept one (read 4k at a
    time: copies are few)."""
    import hashlib

    kept: list[int] = []
    seen: set[bytes] = set()
    for s in range(0, len(order), 4 * k):
        chunk = order[s:s + 4 * k]
        for i, g in zip(chunk, read(chunk)):
            key = hashlib.sha1(np.packbits(np.asarray(g) > 0).tobytes()).digest()
            if key not in seen:
                seen.add(key)
                kept.append(int(i))
                if len(kept) == k:
                    return np.asarray(kept, np.int64)
    return np.asarray(kept, np.int64)


VoxelSource = Any  # a VoxelDataset (read(positions)), a FeatureBank (thumbnail(i)) or an array (N, R, R, R)


def _reader(source: VoxelSource) -> tuple[int, Callable[[np.ndarray], np.ndarray]]:
    """(number of shapes, read(positions) -> grids (B, R, R, R)) of a voxel source."""
    if hasattr(source, "read"):  # VoxelDataset
        return len(source), source.read
    if hasattr(source, "thumbnail"):  # FeatureBank: its 32^3 thumbnails are the shapes
        return len(source), lambda pos: np.stack([source.thumbnail(int(i)) for i in pos])
    arr = np.asarray(source)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise BadInputError(f"voxels must have shape (N, R, R, R), got {arr.shape}")
    return len(arr), lambda pos: arr[pos]


def unit_responses(
    model: Model,
    source: VoxelSource,
    *,
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> UnitResponses:
    """Every unit's response (activation max over space) of ``layers`` (default: all) to every shape of
    ``source``, in one pass a batch at a time with ``model``'s discriminator on its device and precision,
    holding the model's lock per batch. ``progress(done, total)`` is called per batch (it may raise to stop)."""
    d = _discriminator(model)
    infos = layer_infos(model)
    wanted = sorted(set(range(len(infos)) if layers is None else layers))
    for lay in wanted:
        check_unit(model, lay)
    if batch_size < 1:
        raise BadInputError(f"batch_size must be >= 1, got {batch_size}")
    n, read = _reader(source)
    if n == 0:
        raise BadInputError("no shapes to score (the set is empty)")
    maxima = {lay: np.empty((n, infos[lay].units), np.float32) for lay in wanted}
    r = model.resolution
    for s in range(0, n, batch_size):
        e = min(n, s + batch_size)
        x = torch.from_numpy(prepare_voxels(read(np.arange(s, e)), r))
        with model.lock, _eval(d), torch.inference_mode():  # the app shares this model
            with autocast(model.device, model.amp_dtype):
                acts = d.activations(x.to(model.device))
            for lay in wanted:
                maxima[lay][s:e] = acts[lay].float().amax(dim=(2, 3, 4)).cpu().numpy()
        if progress is not None:
            progress(e, n)
    return UnitResponses([infos[i] for i in wanted], maxima, read)


def top_shapes(model: Model, source: VoxelSource, layer: int, unit: int, k: int = 8, *, distinct: bool = True,
               batch_size: int = 64, progress: Callable[[int, int], None] | None = None) -> TopShapes:
    """The ``k`` shapes of ``source`` that excite unit ``unit`` of layer ``layer`` most, with their responses
    (``distinct``: copies of a higher-ranked shape skipped, see :meth:`UnitResponses.top`)."""
    check_unit(model, layer, unit)
    if k < 1:
        raise BadInputError(f"k must be >= 1, got {k}")
    resp = unit_responses(model, source, layers=[layer], batch_size=batch_size, progress=progress)
    return resp.top(layer, unit, k, distinct=distinct)


def unit_heatmaps(model: Model, voxels: np.ndarray, layer: int, unit: int, *, batch_size: int = 16) -> np.ndarray:
    """d(response of the unit) / d(input voxel) for grids (N, R, R, R) or (R, R, R): (N, r, r, r) float32 at
    the model's resolution r (other grid sizes are resampled as for features). Computed in fp32."""
    d = _discriminator(model)
    check_unit(model, layer, unit)
    grids = prepare_voxels(voxels, model.resolution)  # (N, r, r, r) float32
    out = np.empty_like(grids)
    for s in range(0, len(grids), batch_size):
        x = torch.from_numpy(grids[s:s + batch_size]).to(model.device).requires_grad_(True)
        with model.lock, _eval(d), torch.enable_grad():
            act = d.activations(x)[layer][:, unit]  # (B, S, S, S)
            response = act.flatten(1).amax(dim=1)  # (B,): one winner per shape
            (grad,) = torch.autograd.grad(response.sum(), x)
        out[s:s + len(x)] = grad.float().cpu().numpy()
    return out


class _eval:
    """D in eval mode for the duration (BatchNorm's running statistics), its flag restored after."""

    def __init__(self, d: torch.nn.Module) -> None:
        self.d = d

    def __enter__(self) -> None:
        self.was = self.d.training
        self.d.eval()

    def __exit__(self, *exc: object) -> None:
        self.d.train(self.was)


# -- pictures ----------------------------------------------------------------------------------------------
def surface_heat(grid: np.ndarray, heat: np.ndarray, level: float = 0.5, sigma: float = 1.0) -> np.ndarray:
    """The heat map of the occupied voxels, for painting on the surface: the positive part (the voxels that
    drive the unit), averaged over the occupied voxels within about ``sigma`` voxels (a Gaussian; the strided
    convolutions leave a checkerboard in a raw gradient), then spread to the empty voxels from their nearest
    occupied one, so that a surface point between voxels reads the shape's own value. (R, R, R) float32 in
    [0, 1], scaled by its largest value (all 0 where the unit does not respond)."""
    from scipy import ndimage

    occ = np.asarray(grid) > level
    if not occ.any():
        return np.zeros(occ.shape, np.float32)
    h = np.where(occ, np.clip(np.asarray(heat, np.float64), 0, None), 0.0)
    if sigma > 0:  # normalised convolution: empty voxels neither add heat nor dilute it
        h = ndimage.gaussian_filter(h, sigma, mode="constant") / np.maximum(
            ndimage.gaussian_filter(occ.astype(np.float64), sigma, mode="constant"), 1e-12)
    idx = ndimage.distance_transform_edt(~occ, return_distances=False, return_indices=True)
    spread = h[tuple(idx)]
    top = float(spread.max())
    return (spread / top).astype(np.float32) if top > 0 else np.zeros(occ.shape, np.float32)


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """RGB (..., 3) float32 in [0, 1] of heat values in [0, 1], in the palette of the pictures
    (``HEAT_COLOURS``, linear between its stops): for colouring voxels, as the app's thumbnails do."""
    stops = np.array([[int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)] for c in HEAT_COLOURS], np.float32)
    t = np.clip(np.asarray(heat, np.float32), 0, 1) * (len(stops) - 1)
    lo = np.minimum(t.astype(np.int64), len(stops) - 2)
    f = (t - lo)[..., None]
    return ((1 - f) * stops[lo] + f * stops[lo + 1]).astype(np.float32)


def heat_mesh(grid: np.ndarray, heat: np.ndarray, *, level: float = 0.5, smooth: int = 10) -> pv.PolyData:
    """The shape's surface (:func:`gan_core.mesh.voxels_to_mesh`) with a point array ``"heat"`` in [0, 1]:
    :func:`surface_heat` at the voxel nearest each point."""
    from gan_core.mesh import voxels_to_mesh

    mesh = voxels_to_mesh(np.asarray(grid), level=level, smooth_iterations=smooth)
    if mesh.n_points == 0:
        return mesh
    spread = surface_heat(grid, heat, level)
    r = max(spread.shape)  # mesh frame: voxel i is centred at (i + 0.5) / R - 0.5
    ijk = np.rint(np.asarray(mesh.points, np.float64) * r + (np.asarray(spread.shape) - 1) / 2).astype(np.int64)
    ijk = np.clip(ijk, 0, np.asarray(spread.shape) - 1)
    mesh.point_data["heat"] = spread[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
    return mesh


def render_units(grids: Sequence[np.ndarray], heats: Sequence[np.ndarray], path: str | Path, *,
                 titles: Sequence[str] | None = None, ncols: int | None = None, cell: int = 240,
                 level: float = 0.5, progress: Callable[[int, int], None] | None = None) -> Path:
    """Render shapes coloured by their heat maps (:func:`heat_mesh`) into one PNG, atomically: a sheet of
    :func:`gan_core.preview.render_grid`, each surface painted from cold to hot."""
    from matplotlib.colors import LinearSegmentedColormap

    from gan_core.preview import render_grid

    if len(grids) == 0 or len(grids) != len(heats):
        raise BadInputError(f"render_units: {len(grids)} shapes and {len(heats)} heat maps")
    cmap = LinearSegmentedColormap.from_list("unit_heat", HEAT_COLOURS)

    def add_shape(pl: Any, i: int) -> pv.PolyData:
        mesh = heat_mesh(grids[i], heats[i], level=level)
        if mesh.n_points:
            pl.add_mesh(mesh, scalars="heat", cmap=cmap, clim=(0.0, 1.0), smooth_shading=True, specular=0.2,
                        show_scalar_bar=False)
        return mesh

    return render_grid(list(grids), path, titles=titles, ncols=ncols or min(len(grids), 4), cell=cell,
                       level=level, progress=progress, add_shape=add_shape)
