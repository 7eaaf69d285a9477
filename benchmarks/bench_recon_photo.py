"""Time one photo's reconstruction (read, frame, encode, generate; confidence included) by a VAE-GAN checkpoint.

    python benchmarks/bench_recon_photo.py --checkpoint assets/fast32_modelnet10_vae.pt --threads 2 \
        ../shared/data/ikea_dev/images/*.jpg

Prints the median and 90th percentile over the photos given (each timed once after two warm-up calls), and
the encoder's and generator's share on a preframed picture, in milliseconds, as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--n", type=int, default=30, help="time at most this many photos")
    ap.add_argument("photos", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from gan_core.image_input import encode_images, load_image
    from gan_core.runtime import load_model

    model = load_model(args.checkpoint, device="cpu", precision=args.precision)
    photos = args.photos[:args.n]
    for p in photos[:2]:
        model.reconstruct_image(p)
    times = []
    for p in photos:
        t0 = time.perf_counter()
        model.reconstruct_image(p)
        times.append(1000 * (time.perf_counter() - t0))
    pic = load_image(photos[0], model.profile.image_size)[None]
    enc, gen = [], []
    for _ in range(10):
        t0 = time.perf_counter()
        z = encode_images(model.encoder, pic)
        t1 = time.perf_counter()
        model.generate(z, use_cache=False)
        enc.append(1000 * (t1 - t0))
        gen.append(1000 * (time.perf_counter() - t1))
    print(json.dumps({"checkpoint": args.checkpoint, "encoder": model.profile.encoder, "threads": args.threads,
                      "photos": len(photos), "median_ms": round(float(np.median(times)), 1),
                      "p90_ms": round(float(np.percentile(times, 90)), 1),
                      "encode_ms": round(float(np.median(enc)), 1), "generate_ms": round(float(np.median(gen)), 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
