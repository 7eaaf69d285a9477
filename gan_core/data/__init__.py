"""Voxel data: datasets (npz / HDF5), resampling, importers, synthetic shapes, renders."""

from gan_core.data.dataset import VoxelDataset
from gan_core.data.resample import resample

__all__ = ["VoxelDataset", "resample"]
