"""A picture to judge single-image reconstruction by eye: per row, a fresh render of a held-out shape, the
shape itself, and each checkpoint's reconstruction of that render (shaded voxels, the whole grid framed).

    xvfb-run -a python scripts/recon_sheet.py --out sheet.png runs/vae/vae5/epoch_0001.pt runs/vae/vae5/epoch_0004.pt

The held-out shapes are those of the last checkpoint (its stored split of --data); the IoU of each
reconstruction (best of 4 rotations about the up axis) is printed per row.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="VAE-GAN checkpoints (with an encoder) to compare")
    ap.add_argument("--data", default="../shared/data/modelnet10_train_32.npz", help="their training data")
    ap.add_argument("--classes", default="chair:6,table:2,sofa:2,desk:1,toilet:1",
                    help="class:count of held-out shapes per row group")
    ap.add_argument("--seed", type=int, default=5, help="render seed (views the models never saw)")
    ap.add_argument("--size", type=int, default=128, help="tile side in pixels")
    ap.add_argument("--out", required=True, help="PNG to write")
    args = ap.parse_args()

    from PIL import Image

    from explorer.thumbs import shade_voxels
    from gan_core.checkpoint import load_checkpoint
    from gan_core.data.dataset import VoxelDataset
    from gan_core.data.render import render_shapes
    from gan_core.reconstruct import best_rotation_iou, reconstruct
    from gan_core.runtime import load_model

    held = np.asarray(load_checkpoint(args.checkpoints[-1])["state"]["holdout_rows"])
    ds = VoxelDataset(args.data)
    rows: list[int] = []
    for item in args.classes.split(","):
        name, count = item.split(":")
        label = ds.class_names.index(name)
        rows += [int(r) for r in held if ds.labels[r] == label and ds.read([r])[0].sum() >= 32][:int(count)]
    vox = ds.read(rows)
    images, _, _ = render_shapes(vox, views=1, size=128, seed=args.seed, rows=rows)
    models = [load_model(c) for c in args.checkpoints]

    def tile(grid: np.ndarray) -> np.ndarray:
        rgba = shade_voxels(grid, 0.5, args.size, fit=0.88).astype(np.float32)
        alpha = rgba[..., 3:4] / 255.0
        return (rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)

    lines = []
    for i, row in enumerate(rows):
        image = np.asarray(Image.fromarray(images[i, 0]).resize((args.size, args.size)))
        cells, ious = [image, tile(vox[i])], []
        for m in models:
            rec, _ = reconstruct(m, images[i, 0])
            cells.append(tile(rec))
            ious.append(round(best_rotation_iou(rec, vox[i])[0], 2))
        print(ds.class_names[ds.labels[row]], row, "IoU", ious)
        lines.append(np.concatenate(cells, 1))
    Image.fromarray(np.concatenate(lines, 0)).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
