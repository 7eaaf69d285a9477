"""gan3d train-vae: the 3D-VAE-GAN (an image encoder in front of the generator) on rendered training pairs."""

from __future__ import annotations

import argparse
import json

from gan_core.commands._common import add_training_args, existing_file, print_dry_run, training_config
from gan_core.config import ENCODERS

HELP = ("train a 3D-VAE-GAN image encoder (paper objective; from a trained 3D-GAN with --from-gan; resumable; "
        "keeps a held-out split)")
EXAMPLE = ("gan3d train-vae --data ../shared/data/modelnet10_train_32.npz --renders runs/renders.h5 "
           "--from-gan runs/default/latest.pt --epochs 10 --out runs/vae")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_training_args(p, epochs=20)
    p.add_argument("--renders", required=True,
                   help="render cache of --data (.h5, from `gan3d render`); rendered here first if missing")
    p.add_argument("--from-gan", default=None, help="initialise G and D from a trained 3D-GAN checkpoint")
    p.add_argument("--freeze-generator", dest="freeze_generator", action="store_true", default=None,
                   help="train only the encoder (default when --from-gan is given)")
    p.add_argument("--train-generator", dest="freeze_generator", action="store_false",
                   help="with --from-gan, also train G and D (the full VAE-GAN objective)")
    p.add_argument("--e-lr", type=float, default=2e-4, help="encoder learning rate (Adam)")
    p.add_argument("--kl-weight", type=float, default=None,
                   help="a1 on KL(q(z|y)||p(z)) averaged over z dims and batch (profile: the paper's 5)")
    p.add_argument("--recon-weight", type=float, default=None,
                   help="a2 on ||G(E(y)) - x||^2 summed over voxels, mean over batch (profile: the paper's 1e-4)")
    p.add_argument("--gan-weight", type=float, default=1.0,
                   help="weight of L_GAN in G's loss with --train-generator (1: the paper; 0: no discriminator, "
                        "G and E learn reconstruction only, a 3D-VAE, faster and steadier on a small budget)")
    p.add_argument("--recon-loss", choices=["mse", "bce"], default="mse",
                   help="mse: the paper's squared error; bce: cross-entropy on G's logits (learns through a "
                        "confident, saturated generator); both summed over voxels, mean over batch")
    p.add_argument("--pos-weight", type=float, default=1.0,
                   help="with --recon-loss bce: weight of occupied voxels (>1 keeps thin parts such as chair legs "
                        "above the iso level; the share of empty to occupied voxels balances them fully)")
    p.add_argument("--holdout", type=float, default=0.1, help="share of shapes kept out of training (by --seed)")
    p.add_argument("--min-voxels", type=int, default=32, help="skip shapes with fewer occupied voxels")
    p.add_argument("--views", type=int, default=4, help="views per shape when the renders are made here")
    p.add_argument("--encoder", choices=list(ENCODERS), default=None,
                   help="image encoder: paper (the paper's five conv layers) or resnet (a small residual CNN with "
                        "global pooling; not the paper's) (default: the profile's, paper)")
    p.add_argument("--image-augment", action="store_true",
                   help="change each training image anew on the fly: box zoom / shift / tilt, colour, gamma, blur, "
                        "noise, occluders (for photo-style renders and real photos)")


def to_config(args: argparse.Namespace):  # -> VaeTrainConfig
    from gan_core.vae_train import VaeTrainConfig

    return training_config(VaeTrainConfig, args)


def run(args: argparse.Namespace) -> int:
    existing_file(args.data, "--data")
    if args.from_gan:
        existing_file(args.from_gan, "--from-gan")
    cfg = to_config(args)
    cfg.validate()
    if args.dry_run:
        print_dry_run(cfg, frozen_generator=cfg.frozen)
        return 0
    from gan_core.commands._common import progress_callback
    from gan_core.vae_train import VaeTrainer

    report = progress_callback("rendering", "shape")  # used only when --renders must be made first
    try:
        trainer = VaeTrainer(cfg, progress=report)
    finally:
        report.close()
    try:
        last = trainer.run()
    finally:
        trainer.close()
    keys = ("kl", "recon", "heldout_iou", "heldout_iou_rot", "train_iou")
    print(json.dumps({"epoch": trainer.epoch, "step": trainer.step, "out": str(trainer.out),
                      **{k: last.get(k) for k in keys}}))
    return 0
