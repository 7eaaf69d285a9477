"""Stage one of a two-stage image encoder (issue 22, item 2): regress a registered VAE's z from photo-style renders.

The teacher is a VAE-GAN checkpoint whose encoder and generator work together (the bundled
assets/fast32_modelnet10_vae.pt). For each training shape its encoder reads clean renders (``--clean``, a
render cache of the same data) and the posterior mean whose G(z) best matches the shape's voxels (IoU) becomes
the shape's target z. A new encoder (``--encoder``, default resnet) then learns photo-style renders (``--photo``)
-> that z by squared error, each image changed anew by gan_core.image_augment. The generator is never changed.
Stage two is `gan3d train-vae --from-gan OUT/latest.pt --encoder resnet --freeze-generator ...`: fine-tuning
through the frozen G on the reconstruction loss.

Targets are cached in OUT/targets.npz; OUT/latest.pt (a VAE-GAN checkpoint: the teacher's G and the new
encoder) and OUT/train_state.pt are written every epoch and at the end, and a run with the same OUT resumes.
OUT/log.jsonl has one line per epoch: the mean loss, held-out IoU of G(E(photo)) and of G(target z).

    python scripts/train_encoder_z.py --data runs/split/train.npz --photo runs/enc/photo_train_k8.h5 \
        --clean runs/enc/clean_train_k2.h5 --teacher assets/fast32_modelnet10_vae.pt --out runs/enc/z1 \
        --minutes 40 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from gan_core.checkpoint import load_checkpoint, load_weights, save_checkpoint
from gan_core.data.render_cache import RenderSet
from gan_core.image_augment import augment_images
from gan_core.models import Generator, ImageEncoder, build_encoder
from gan_core.vae_objective import holdout_split
from gan_core.vae_train import images_to_tensor


def _iou(prob: np.ndarray, vox: np.ndarray) -> np.ndarray:
    p, t = prob > 0.5, vox > 0
    inter = (p & t).reshape(len(p), -1).sum(1)
    union = (p | t).reshape(len(p), -1).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


@torch.no_grad()
def teacher_targets(teacher: str, clean: RenderSet, rows: np.ndarray, voxels: np.ndarray, G: Generator,
                    batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per shape: the teacher encoder's posterior mean over the clean views whose G(z) has the best IoU."""
    ck = load_checkpoint(teacher)
    E = ImageEncoder(ck["profile"])
    load_weights(E, ck, "encoder")
    E.eval()
    n, k = len(rows), clean.views
    best_z = np.zeros((n, ck["profile"].z_dim), np.float32)
    best_iou = np.full(n, -1.0)
    for v in range(k):
        for i in range(0, n, batch):
            imgs = clean.images(rows[i:i + batch], v)
            z = E(images_to_tensor(imgs, "cpu"))[0]
            iou = _iou(G(z).numpy(), voxels[i:i + batch])
            better = iou > best_iou[i:i + batch]
            best_z[i:i + batch][better] = z.numpy()[better]
            best_iou[i:i + batch][better] = iou[better]
    return best_z, best_iou


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--photo", required=True, help="photo-style render cache of --data (training images)")
    ap.add_argument("--clean", required=True, help="clean render cache of --data (the teacher's images)")
    ap.add_argument("--teacher", required=True, help="VAE-GAN checkpoint: its G is kept, its E gives the targets")
    ap.add_argument("--out", required=True)
    ap.add_argument("--encoder", default="resnet", choices=["resnet", "paper"])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--minutes", type=float, default=30.0, help="stop after this much training time")
    ap.add_argument("--holdout", type=float, default=0.03, help="as train-vae's --holdout (same split by seed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    with np.load(args.data) as f:
        voxels = (f["voxels"] > 0).astype(np.uint8)
    n = len(voxels)
    photo, clean = RenderSet(args.photo), RenderSet(args.clean)
    prow, crow = photo.rows_for(np.arange(n)), clean.rows_for(np.arange(n))
    train_pos, hold_pos = holdout_split(n, args.holdout, args.seed)
    ck = load_checkpoint(args.teacher)
    gp = ck["profile"]
    G = Generator(gp)
    load_weights(G, ck, "generator")
    G.eval().requires_grad_(False)

    tpath = out / "targets.npz"
    if tpath.exists():
        with np.load(tpath) as f:
            z_t, t_iou = f["z"], f["iou"]
    else:
        t0 = time.time()
        z_t, t_iou = teacher_targets(args.teacher, clean, crow, voxels, G)
        np.savez(tpath, z=z_t, iou=t_iou)
        print(json.dumps({"targets": n, "seconds": round(time.time() - t0, 1), "mean_iou": float(t_iou.mean()),
                          "heldout_iou": float(t_iou[hold_pos].mean())}), flush=True)

    p = gp.replace(encoder=args.encoder)
    torch.manual_seed(args.seed)
    E = build_encoder(p).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(E.parameters(), lr=args.lr)
    step, spent = 0, 0.0
    spath = out / "train_state.pt"
    if spath.exists():
        st = torch.load(spath, map_location="cpu", weights_only=False)
        E.load_state_dict(st["encoder"])
        opt.load_state_dict(st["opt"])
        step, spent = st["step"], st["spent"]
    budget = args.minutes * 60
    per_epoch = len(train_pos) // args.batch_size
    z_all = torch.from_numpy(z_t)

    def save() -> None:
        torch.save({"encoder": E.state_dict(), "opt": opt.state_dict(), "step": step, "spent": spent}, spath)
        save_checkpoint(out / "latest.pt", profile=p, kind="vaegan", models={"generator": G, "encoder": E},
                        state={"step": step, "stage": "z regression", "teacher": args.teacher},
                        meta={"photo_renders": args.photo, "render_style": photo.style, "clean_renders": args.clean,
                              "teacher": args.teacher, "data": args.data})

    @torch.no_grad()
    def evaluate() -> dict:
        E.eval()
        ious = []
        for i in range(0, len(hold_pos), 64):
            pos = hold_pos[i:i + 64]
            mean, _ = E(images_to_tensor(photo.images(prow[pos], 0), "cpu", torch.channels_last))
            ious.append(_iou(G(mean).numpy(), voxels[pos]))
        E.train()
        return {"heldout_iou": float(np.concatenate(ious).mean()), "target_heldout_iou": float(t_iou[hold_pos].mean())}

    E.train()
    losses: list[float] = []
    while spent < budget:
        epoch, b = divmod(step, per_epoch)
        perm = np.random.default_rng([args.seed, epoch]).permutation(train_pos)
        pos = np.sort(perm[b * args.batch_size:(b + 1) * args.batch_size])
        t0 = time.perf_counter()
        rng = np.random.default_rng([args.seed, step, 0x2E])
        views = rng.integers(0, photo.views, len(pos))
        y = images_to_tensor(photo.images(prow[pos], views), "cpu", torch.channels_last)
        y = augment_images(y, torch.Generator().manual_seed(int(rng.integers(2**62))))
        mean, _ = E(y.contiguous(memory_format=torch.channels_last))
        loss = (mean - z_all[pos]).pow(2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        spent += time.perf_counter() - t0
        if step % per_epoch == 0 or spent >= budget:
            rec = {"step": step, "epoch": step / per_epoch, "minutes": round(spent / 60, 2),
                   "loss": float(np.mean(losses)), **evaluate()}
            losses = []
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)
            save()
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
