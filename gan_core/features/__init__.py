"""The FeatureBank: discriminator features of a labelled voxel set, stored for retrieval.

The features are those of :mod:`gan_core.d_features` (both sets, ``"paper"`` and ``"last"``: see there).

A bank is an HDF5 file (no pickled objects) with both feature sets, labels, class names, the rows of the
source file and 32^3 bit-packed thumbnails; it records the hash of the discriminator that made it and
refuses queries from another one. Long feature sets are stored reduced (PCA plus a sketch of the residual,
see gan_core.projection), with the map that takes a query's features to the same space.

Modules: ``search`` (nearest-neighbour backends), ``bank`` (FeatureBank), ``bank_file`` (its HDF5 layout),
``build`` (a bank from a voxel set). Import the names below from here; the features of grids themselves from
:mod:`gan_core.d_features`.
"""

from gan_core.features.bank import FeatureBank, pack_voxels
from gan_core.features.bank_file import BANK_FORMAT, BANK_VERSION
from gan_core.features.build import build_bank, dataset_features
from gan_core.features.search import FAISS_MIN_ROWS, METRICS, ONE_THREAD_WORK, faiss_available, select_backend

__all__ = [
    "BANK_FORMAT", "BANK_VERSION", "FAISS_MIN_ROWS", "METRICS", "ONE_THREAD_WORK", "FeatureBank", "build_bank",
    "dataset_features", "faiss_available", "pack_voxels", "select_backend",
]
