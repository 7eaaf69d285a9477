"""Tiny synthetic voxel sets and render caches for core tests (no file from ../shared is ever read by tests)."""

from pathlib import Path

import h5py
import numpy as np

from gan_core.data.render_cache import FORMAT_VERSION
from gan_core.data.render_scene import SMOOTH_ITERATIONS
from gan_core.files import file_sha256

TINY16_IMAGE_SIZE = 64


def boxes_npz(path: Path, n: int = 24, r: int = 16, seed: int = 0) -> Path:
    """n random boxes at r^3 in two classes (flat slabs, tall columns), in the documented npz layout."""
    rng = np.random.default_rng(seed)
    vox = np.zeros((n, r, r, r), np.uint8)
    labels = np.arange(n) % 2
    for i in range(n):
        if labels[i] == 0:
            sx, sy, sz = rng.integers(r // 2, r - 2), rng.integers(r // 2, r - 2), rng.integers(2, 4)
        else:
            sx, sy, sz = rng.integers(2, 5), rng.integers(2, 5), rng.integers(r // 2, r - 2)
        x0, y0 = (r - sx) // 2, (r - sy) // 2
        vox[i, x0:x0 + sx, y0:y0 + sy, 1:1 + sz] = 1
    np.savez(path, voxels=vox, labels=labels.astype(np.int64), classes=np.array(["slab", "column"]))
    return path


def fake_renders(data: Path, out: Path, views: int = 2, size: int = TINY16_IMAGE_SIZE, seed: int = 0) -> Path:
    """A complete render cache of ``data`` whose images are coloured silhouettes of each grid (side views, axis 2
    up): VAE-GAN training data without an off-screen renderer."""
    with np.load(data) as f:
        vox, labels, classes = f["voxels"], f["labels"], [str(c) for c in f["classes"]]
    n, r = len(vox), vox.shape[1]
    images = np.full((n, views, size, size, 3), 255, np.uint8)
    rep = size // r
    for i in range(n):
        for v in range(views):
            sil = vox[i].max(axis=v % 2)[:, ::-1].T  # (R, R): a side view, axis 2 up
            images[i, v][np.kron(sil, np.ones((rep, rep), np.uint8)) > 0] = (40 + 60 * v, 90, 160)
    with h5py.File(out, "w") as h5:
        h5.create_dataset("images", data=images, chunks=(1, views, size, size, 3))
        h5["azimuth"] = np.zeros((n, views), np.float32)
        h5["elevation"] = np.zeros((n, views), np.float32)
        h5["shape_index"] = np.arange(n, dtype=np.int64)
        h5["labels"] = labels
        h5.create_dataset("classes", data=classes, dtype=h5py.string_dtype("utf-8"))
        h5["done"] = np.ones(n, np.uint8)
        h5.attrs.update(data_sha256=file_sha256(data), views=views, size=size, seed=seed,
                        smooth_iterations=SMOOTH_ITERATIONS, complete=True, gan3d_renders=FORMAT_VERSION)
    return out


def vae_data(directory: Path) -> Path:
    """24 boxes (boxes.npz) and their stand-in render cache (renders.h5) in ``directory``: the data path."""
    path = boxes_npz(directory / "boxes.npz", n=24)
    fake_renders(path, directory / "renders.h5")
    return path


def vae_config(data: Path, out: Path, **kw: object):  # -> VaeTrainConfig
    """A tiny16 VAE-GAN run on :func:`vae_data` (2 epochs of 2 batches of 8, 6 held-out shapes), changed by ``kw``."""
    from gan_core.vae_train import VaeTrainConfig

    base = dict(data=str(data), renders=str(data.parent / "renders.h5"), out=str(out), profile="tiny16", epochs=2,
                batch_size=8, precision="fp32", channels_last=False, seed=0, holdout=0.25, min_voxels=1,
                e_lr=1e-3, eval_shapes=8)
    base.update(kw)
    return VaeTrainConfig(**base)


def gan_config(data: Path, out: Path, **kw: object):  # -> TrainConfig
    """A tiny16 3D-GAN run (2 epochs at batch 8, fp32, seed 0) on ``data``, changed by ``kw``."""
    from gan_core.train import TrainConfig

    base = dict(data=str(data), out=str(out), profile="tiny16", epochs=2, batch_size=8, precision="fp32",
                channels_last=False, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def tiny_model_with_bank(directory: Path) -> dict:
    """An untrained tiny16 checkpoint (torch seed 0), 24 boxes and their feature bank made by gan3d features, in
    ``directory``: {"ckpt", "data", "bank", "tmp"} paths."""
    import torch

    from gan_core.checkpoint import save_checkpoint
    from gan_core.cli import main
    from gan_core.config import get_profile
    from gan_core.models import Discriminator, Generator

    p = get_profile("tiny16")
    torch.manual_seed(0)
    ckpt = save_checkpoint(directory / "m.pt", profile=p,
                           models={"generator": Generator(p), "discriminator": Discriminator(p)})
    data = boxes_npz(directory / "train.npz", n=24, seed=0)
    assert main(["features", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(directory / "bank.h5")]) == 0
    return {"ckpt": ckpt, "data": data, "bank": directory / "bank.h5", "tmp": directory}
