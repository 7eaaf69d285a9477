"""Building a feature bank from a voxel set with a model's discriminator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from gan_core.d_features import KINDS, extract_feature_sets, feature_dim
from gan_core.errors import BadInputError
from gan_core.features.bank import FeatureBank, pack_voxels
from gan_core.files import file_sha256

if TYPE_CHECKING:
    from gan_core.data.dataset import VoxelDataset
    from gan_core.model import Model


def dataset_features(
    model: Model,
    dataset: VoxelDataset,
    *,
    kinds: Sequence[str] = ("paper",),
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
    dtype: str = "float32",
) -> dict[str, np.ndarray]:
    """Features ``{kind: (N, F) dtype}`` of every shape of ``dataset``, read and computed a batch at a time
    with ``model``'s discriminator on its device and precision. ``progress(done, total)`` is called per batch."""
    if model.discriminator is None:
        raise BadInputError(f"model {model.name!r} has no discriminator; use a full training checkpoint")
    if batch_size < 1:
        raise BadInputError(f"batch_size must be >= 1, got {batch_size}")
    n = len(dataset)
    feats = {k: np.empty((n, feature_dim(model.profile, k)), dtype) for k in kinds}
    for s in range(0, n, batch_size):
        e = min(n, s + batch_size)
        vox = dataset.read(np.arange(s, e))  # (B, R, R, R) uint8
        with model.lock:  # the app may share this model
            got = extract_feature_sets(model.discriminator, vox, kinds=kinds, batch_size=batch_size,
                                       device=model.device, amp_dtype=model.amp_dtype)
        for k in kinds:
            feats[k][s:e] = got[k]
        if progress is not None:
            progress(e, n)
    return feats


def build_bank(
    model: Model,
    dataset: VoxelDataset,
    *,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
    dtype: str = "float16",
    n_components: int | None = 256,
    n_sketch: int = 512,
) -> FeatureBank:
    """A fitted bank of ``dataset``: both feature sets (one forward pass) with ``model``'s discriminator, labels,
    provenance and 32^3 thumbnails, each kind reduced as FeatureBank's ``n_components`` and ``n_sketch`` say.
    ``progress(done, total)`` is called per batch."""
    feats = dataset_features(model, dataset, kinds=KINDS, batch_size=batch_size, progress=progress, dtype=dtype)
    thumbs = np.concatenate([pack_voxels(vox, 32) for _, vox in dataset.chunks()])
    bank = FeatureBank(
        weights_hash=model.weights_hash(), profile=model.profile.name, data_name=dataset.path.name,
        data_sha256=file_sha256(dataset.path), dtype=dtype, n_components=n_components, n_sketch=n_sketch,
        meta={"classes": dataset.classes, "limit": dataset.limit, "checkpoint": str(model.checkpoint_path or ""),
              "model": model.name},
    )
    return bank.fit(feats, labels=dataset.labels, class_names=dataset.class_names, source_index=dataset.indices,
                    thumbnails=thumbs)
