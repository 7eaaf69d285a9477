"""gan3d train-vae: the 3D-VAE-GAN (an image encoder in front of the generator) on rendered training pairs."""

from __future__ import annotations

import argparse
import json

from gan_core.commands._common import add_training_args, existing_file, print_dry_run, training_config
from gan_core.run_config import VaeTrainConfig

HELP = ("train a 3D-VAE-GAN image encoder (paper objective; from a trained 3D-GAN with --from-gan; resumable; "
        "keeps a held-out split)")
EXAMPLE = ("gan3d train-vae --data ../shared/data/modelnet10_train_32.npz --renders runs/renders.h5 "
           "--from-gan runs/default/latest.pt --epochs 10 --out runs/vae")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_training_args(p, VaeTrainConfig)


def to_config(args: argparse.Namespace) -> VaeTrainConfig:
    return training_config(VaeTrainConfig, args)


def run(args: argparse.Namespace) -> int:
    existing_file(args.data, "--data")
    if args.from_gan:
        existing_file(args.from_gan, "--from-gan")
    if args.encoder_from:
        existing_file(args.encoder_from, "--encoder-from")
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
