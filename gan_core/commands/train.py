"""gan3d train: the 3D-GAN, with the recipe that trains best on a CPU (``--recipe fast``) or the paper's."""

from __future__ import annotations

import argparse
import json

from gan_core.commands._common import add_training_args, existing_file, print_dry_run, training_config
from gan_core.run_config import TrainConfig

HELP = "train a 3D-GAN (the fast recipe, or the paper's; resumable; CPU, CUDA, MPS or many GPUs with torchrun)"
EXAMPLE = ("gan3d train --data ../shared/data/modelnet10_train_32.npz --classes chair --profile fast32 "
           "--epochs 50 --out runs/chair")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_training_args(p, TrainConfig)


def to_config(args: argparse.Namespace) -> TrainConfig:
    return training_config(TrainConfig, args)


def run(args: argparse.Namespace) -> int:
    existing_file(args.data, "--data")
    cfg = to_config(args)
    cfg.validate()
    if args.dry_run:
        print_dry_run(cfg)
        return 0
    from gan_core.train import Trainer

    trainer = Trainer(cfg)
    last = trainer.run()
    if trainer.world.is_main:
        print(json.dumps({"epoch": trainer.epoch, "step": trainer.step, "out": str(trainer.out),
                          **{k: last.get(k) for k in ("g_loss", "d_loss", "d_acc", "d_update_rate", "warning")}}))
    return 0
