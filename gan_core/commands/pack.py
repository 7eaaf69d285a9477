"""gan3d pack: a compact, weights-only copy of a checkpoint for shipping (assets/)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gan_core.commands._common import existing_file

HELP = "write a weights-only copy of a checkpoint (no optimiser state; fp16 by default) for assets/"
EXAMPLE = "gan3d pack --checkpoint runs/default/latest.pt --out assets/fast32_modelnet10.pt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="training checkpoint to pack")
    p.add_argument("--out", required=True, help="output .pt")
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16, half the size)")
    p.add_argument("--int8", action="store_true",
                   help="8-bit convolution weights, a scale per channel (about half an fp16 file; check the samples)")
    p.add_argument("--parts", default="generator,discriminator,encoder",
                   help="networks to keep (those present in the checkpoint)")
    p.add_argument("--encoder-from", default=None,
                   help="take the image encoder from this (3D-VAE-GAN) checkpoint instead")


def run(args: argparse.Namespace) -> int:
    from gan_core.checkpoint import MODEL_KEYS, load_checkpoint, pack_checkpoint
    from gan_core.errors import BadInputError

    src = existing_file(args.checkpoint, "--checkpoint")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in MODEL_KEYS]
    if bad:
        raise BadInputError(f"--parts: unknown network {bad[0]!r}; use {', '.join(MODEL_KEYS)}")
    if args.fp32 and args.int8:
        raise BadInputError("--fp32 and --int8 exclude each other")
    extra = load_checkpoint(existing_file(args.encoder_from, "--encoder-from")) if args.encoder_from else None
    out = pack_checkpoint(load_checkpoint(src), Path(args.out), parts=parts, half=not args.fp32, encoder_from=extra,
                          int8=args.int8)
    print(json.dumps({"out": str(out), "bytes": out.stat().st_size}))
    return 0
