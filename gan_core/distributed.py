"""Multi-process training under ``torchrun``: rank bookkeeping and gradient averaging.

The GAN step calls D several times before one backward (real, fake, then fake for G), which
DistributedDataParallel's per-forward hooks do not allow; so gradients are averaged explicitly with one
all-reduce per network after backward: the same arithmetic DDP performs. Single-process runs skip all of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """Average a scalar over processes (so every rank takes the same D-gating decision)."""
        if self.size == 1:
            return t
        t = t.clone()
        dist.all_reduce(t)
        return t / self.size

    def all_reduce_grads(self, model: nn.Module) -> None:
        if self.size == 1:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.size
        i = 0
        for g in grads:
            g.copy_(flat[i:i + g.numel()].view_as(g))
            i += g.numel()


def init() -> World:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), else a one-process world."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def device(world: World) -> torch.device | None:
    """Under torchrun with CUDA, each process takes GPU ``local_rank``; otherwise None (use the picker)."""
    if world.size > 1 and torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return None
