"""gan3d train: the 3D-GAN with the paper's recipe."""

from __future__ import annotations

import argparse
import dataclasses
import json

from gan_core.commands._common import class_list, existing_file

HELP = "train a 3D-GAN (paper recipe; resumable; CPU, CUDA, MPS or many GPUs with torchrun)"
EXAMPLE = ("gan3d train --data ../shared/data/modelnet10_train_32.npz --classes chair --profile fast32 "
           "--epochs 50 --out runs/chair")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="voxel set (.npz or .h5) in the documented layout")
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics.jsonl, samples)")
    p.add_argument("--profile", default="fast32", help="model profile: paper64, fast32, tiny16")
    p.add_argument("--classes", default=None, help="comma-separated class names to train on (default: all)")
    p.add_argument("--limit", type=int, default=None, help="use at most N shapes")
    p.add_argument("--epochs", type=int, default=100, help="train until this many epochs are complete")
    p.add_argument("--batch-size", type=int, default=None, help="batch size per process (profile: paper 100)")
    p.add_argument("--g-lr", type=float, default=None, help="generator learning rate (paper 0.0025)")
    p.add_argument("--d-lr", type=float, default=None, help="discriminator learning rate (paper 1e-5)")
    p.add_argument("--beta1", type=float, default=None, help="Adam beta1 (paper 0.5)")
    p.add_argument("--beta2", type=float, default=None, help="Adam beta2 (0.999)")
    p.add_argument("--d-acc-threshold", type=float, default=None,
                   help="update D only while its batch accuracy is below this (paper 0.8)")
    p.add_argument("--z-prior", choices=["normal", "uniform"], default=None, help="latent prior (profile: normal)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="D's real target is 1 - this (0 = paper)")
    p.add_argument("--instance-noise", type=float, default=0.0,
                   help="std of noise added to D's inputs, annealed to 0 over the run (0 = paper)")
    p.add_argument("--seed", type=int, default=0, help="seed for data order and z")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="autocast precision (auto: bf16 on CPU and recent GPUs)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="keep the default memory format (channels_last_3d is faster on CPU)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0, help="also save latest.pt this often")
    p.add_argument("--snapshot-every", type=int, default=5, help="keep epoch_NNNN.pt every N epochs")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in total")
    p.add_argument("--init-from", default=None, help="start from another checkpoint's G and D weights")
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest.pt if it exists")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")


def to_config(args: argparse.Namespace):  # -> TrainConfig
    from gan_core.train import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kw = {k: v for k, v in vars(args).items() if k in fields}
    kw["classes"] = class_list(args.classes)
    return TrainConfig(**kw)


def run(args: argparse.Namespace) -> int:
    existing_file(args.data, "--data")
    cfg = to_config(args)
    cfg.validate()
    if args.dry_run:
        print(json.dumps({"config": dataclasses.asdict(cfg), "profile": cfg.resolved_profile().to_dict()}, indent=2))
        return 0
    from gan_core.train import Trainer

    trainer = Trainer(cfg)
    last = trainer.run()
    if trainer.world.is_main:
        print(json.dumps({"epoch": trainer.epoch, "step": trainer.step, "out": str(trainer.out),
                          **{k: last.get(k) for k in ("g_loss", "d_loss", "d_acc", "d_update_rate", "warning")}}))
    return 0
