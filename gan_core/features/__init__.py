"""The FeatureBank: discriminator features of a labelled voxel set, stored for retrieval.

The features are those of :mod:`gan_core.d_features`, both sets (Wu et al. 2016, section 4.2 and 4.4):

* ``"paper"``: the responses of D's last three hidden conv blocks, each max-pooled to 2x2x2 and flattened
  (channel-major, then x, y, z) and concatenated. At paper64 those blocks are D's 2nd, 3rd and 4th conv
  layers, 128@16^3, 256@8^3 and 512@4^3, pooled with stride 8, 4 and 2: 8 * (128 + 256 + 512) = 7168 values,
  the paper's SVM features. The same rule gives 8 * (64 + 128 + 256) = 3584 at fast32 (taps 64@16^3,
  128@8^3, 256@4^3) and 8 * (16 + 32) = 384 at tiny16 (which has only two hidden blocks).
* ``"last"``: the last hidden block's full response, flattened: 512 * 4^3 = 32768 values at paper64,
  256 * 4^3 = 16384 at fast32. The paper uses D's last conv layer for nearest-neighbour retrieval of
  generated shapes (to show that G does not memorise).

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
