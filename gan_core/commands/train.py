"""gan3d train: the 3D-GAN, with the recipe that trains best on a CPU (``--recipe fast``) or the paper's."""

from __future__ import annotations

import argparse
import json

from gan_core.commands._common import add_training_args, existing_file, print_dry_run, training_config
from gan_core.config import AUGMENTS, D_NORMS, LOSSES, RECIPES

HELP = "train a 3D-GAN (the fast recipe, or the paper's; resumable; CPU, CUDA, MPS or many GPUs with torchrun)"
EXAMPLE = ("gan3d train --data ../shared/data/modelnet10_train_32.npz --classes chair --profile fast32 "
           "--epochs 50 --out runs/chair")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_training_args(p, epochs=100)
    p.add_argument("--beta1", type=float, default=None, help="Adam beta1 (paper 0.5)")
    p.add_argument("--beta2", type=float, default=None, help="Adam beta2 (0.999)")
    p.add_argument("--d-acc-threshold", type=float, default=None,
                   help="update D only while its batch accuracy is below this (paper 0.8; 1: at every step)")
    p.add_argument("--z-prior", choices=["normal", "uniform"], default=None, help="latent prior (profile: normal)")
    p.add_argument("--label-smoothing", type=float, default=None, help="D's real target is 1 - this (paper: 0)")
    p.add_argument("--instance-noise", type=float, default=None,
                   help="std of noise added to D's inputs, annealed to 0 over the run (paper: 0)")
    p.add_argument("--ema-kimg", type=float, default=None,
                   help="keep a moving average of G's weights with this half-life in thousands of training images, "
                        "and publish it as the checkpoint's generator (paper: 0, off)")
    p.add_argument("--loss", choices=LOSSES, default=None,
                   help="GAN loss: bce (the paper's; G's side non-saturating) or hinge")
    p.add_argument("--r1-gamma", type=float, default=None,
                   help="weight of the R1 penalty on D's input gradient at real shapes (paper: 0, off)")
    p.add_argument("--r1-every", type=int, default=4, help="apply R1 at every Nth step, scaled by N (lazy)")
    p.add_argument("--augment", choices=AUGMENTS, default=None,
                   help="D sees real and fake shapes through this: shift moves each by up to 2 voxels (paper: none)")
    p.add_argument("--d-norm", choices=D_NORMS, default=None,
                   help="D's normalisation: batch (the paper) or spectral (spectral norm, no BatchNorm)")
    p.add_argument("--recipe", choices=list(RECIPES), default="fast",
                   help="settings for the flags above, --g-lr / --d-lr and --batch-size that you leave out (default "
                        "fast: it won the equal-CPU comparison in benchmarks/RESULTS.md, 2026-12-07): "
                        + "; ".join(f"{name} ({_recipe_text(name) or 'the paper: Wu et al. 2016'})" for name in RECIPES))
    p.add_argument("--init-from", default=None, help="start from another checkpoint's G and D weights")


def _recipe_text(name: str) -> str:
    return ", ".join(f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}"
                     for k, v in RECIPES[name].items())


def to_config(args: argparse.Namespace):  # -> TrainConfig
    from gan_core.train import TrainConfig

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
