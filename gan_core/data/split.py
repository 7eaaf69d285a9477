"""The held-out split: a stratified, seeded part of a labelled voxel set that no model trains on.

Every model the project ships trains on the ``train`` part only; generation metrics, the classifier that judges
samples, and SVM accuracy are reported on the ``heldout`` part. The split is a function of the labels, the
fraction and the seed only, so anyone can rebuild it from the data file (``gan3d split``).
"""

from __future__ import annotations

import numpy as np

from gan_core.errors import BadInputError

DEFAULT_FRACTION = 0.2
DEFAULT_SEED = 0


def heldout_split(labels: np.ndarray, fraction: float = DEFAULT_FRACTION,
                  seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Rows (sorted) of the train and held-out parts: in each class, ``round(fraction * n)`` rows drawn at
    random (at least one where a class has two or more shapes, none where it has one)."""
    if not 0 < fraction < 1:
        raise BadInputError(f"the held-out fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) < 2:
        raise BadInputError(f"a split needs a 1-d array of at least 2 labels, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in np.unique(labels):  # sorted: the draw does not depend on the rows' order of classes
        rows = np.flatnonzero(labels == c)
        k = int(round(fraction * len(rows)))
        k = min(max(k, 1 if len(rows) >= 2 else 0), len(rows) - 1)
        held.append(rng.permutation(rows)[:k])
    heldout = np.sort(np.concatenate(held)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(labels)), heldout).astype(np.int64)
    return train, heldout
