"""The Model type: a loaded generator (and, when the checkpoint has them, discriminator and image encoder) with
the lock that every user of its networks takes. Everything above takes a Model as an argument; only
:mod:`gan_core.runtime` makes one (``load_model``).

``generate(z)`` is thread-safe; results are cached by z (LRU), so revisiting a slider position is free. On the
CPU it runs a copy of ``generator`` made at load time (BatchNorm folded, weights cast once): treat the loaded
networks as read-only, and hold :attr:`Model.lock` while running them from another thread.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from gan_core.checkpoint import load_weights, weights_hash
from gan_core.config import Profile
from gan_core.d_features import extract_features
from gan_core.device import autocast, autocast_dtype, describe, pick_device
from gan_core.errors import BadCheckpointError, Gan3dError
from gan_core.image_input import ImageLike, encode_image
from gan_core.latent import check_z, project, sample_z
from gan_core.memory import check_memory
from gan_core.models import Discriminator, Generator, build_encoder, inference_generator
from gan_core.recon_confidence import Confidence, FamiliarityModel, encode_picture, judge_result, load_familiarity

__all__ = ["Model"]

_Net = TypeVar("_Net", bound=torch.nn.Module)


class Model:
    """A loaded generator (and, when the checkpoint has them, discriminator and image encoder).

    ``lock`` guards the networks and the shape cache: :meth:`generate`, :meth:`project`, :meth:`features` and
    the image methods take it, and so must any other code that runs the networks while the app may share the
    model (features.build, directions, units do).
    """

    def __init__(
        self,
        profile: Profile,
        *,
        ckpt: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        precision: str = "auto",
        batch_size: int = 32,
        cache_size: int = 256,
        name: str | None = None,
    ) -> None:
        self.profile = profile
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.amp_dtype = autocast_dtype(self.device, precision)
        self.batch_size = batch_size
        self.checkpoint_path = Path(ckpt["path"]) if ckpt and ckpt.get("path") else None
        self.name = name or (self.checkpoint_path.stem if self.checkpoint_path else f"untrained {profile.name}")
        self.meta: dict[str, Any] = dict(ckpt.get("meta", {})) if ckpt else {}
        self._ckpt = ckpt
        generator = self._build(Generator, "generator")
        if generator is None:
            raise BadCheckpointError(f"{self.checkpoint_path}: has no generator weights")
        self.generator: Generator = generator
        self.discriminator = self._build(Discriminator, "discriminator")
        self.encoder = self._build(build_encoder, "encoder")  # the kind its profile names
        on_cpu = self.device.type == "cpu"
        self._fast_generator = (  # what generate() runs: BatchNorm folded (fewer kernels), weights cast once
            inference_generator(self.generator, self.amp_dtype or torch.float32,
                                torch.channels_last_3d if on_cpu else torch.contiguous_format)
            if self.amp_dtype in (None, torch.bfloat16) else None)
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self.lock = threading.Lock()
        self._familiarity: FamiliarityModel | None = None  # the encoder's calibration, looked up once
        self._familiarity_read = False
        self.last_generate_ms = 0.0
        self.default_seeds: tuple[int, ...] = ()  # the registry's showcase seeds (first endpoints, operands)

    def _build(self, cls: Callable[[Profile], _Net], key: str) -> _Net | None:
        """The network ``key`` of the checkpoint (None when it has none), or an untrained one without one."""
        ck = self._ckpt
        if ck is not None and key not in ck:
            return None
        if ck is None:
            net = cls(self.profile)  # untrained, for tests and benchmarks: its random initialisation is the point
        else:
            with torch.device("meta"):  # no random initialisation to overwrite (half of a model's load time)
                net = cls(self.profile)
            load_weights(net, ck, key, assign=True)  # strict: every parameter and buffer comes from the checkpoint
        fmt = torch.channels_last_3d if key != "encoder" and self.device.type == "cpu" else torch.contiguous_format
        moved: _Net = net.to(self.device, memory_format=fmt)  # type: ignore[call-overload]  # stubs lack memory_format
        return moved.eval()

    # -- public API ----------------------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        return self.profile.resolution

    @property
    def device_name(self) -> str:
        return describe(self.device)

    @property
    def key(self) -> str:
        """Identifies the weights (for caches keyed by model)."""
        return f"{self.checkpoint_path}:{id(self)}"

    def sample_z(self, n: int, seed: int | None = None) -> np.ndarray:
        """``n`` latent vectors (n, z_dim) float32 from the prior; the same seed gives the same vectors."""
        return sample_z(n, self.profile, seed=seed).numpy()

    @torch.inference_mode()
    def generate(self, z: np.ndarray | torch.Tensor, *, use_cache: bool = True) -> np.ndarray:
        """Occupancy grids (N, R, R, R) float32 in [0, 1] for z (N, z_dim) or (z_dim,)."""
        zs = check_z(z, self.profile.z_dim)
        check_memory(len(zs) * self.resolution**3 * 4, f"generating {len(zs)} shapes of {self.resolution}^3",
                     hint="generate fewer at a time")
        t0 = time.perf_counter()
        out = np.empty((len(zs),) + (self.resolution,) * 3, np.float32)
        with self.lock:
            todo = []
            for i, zi in enumerate(zs):
                hit = self._cache.get(zi.tobytes()) if use_cache else None
                if hit is not None:
                    self._cache.move_to_end(zi.tobytes())
                    out[i] = hit
                else:
                    todo.append(i)
            for s in range(0, len(todo), self.batch_size):
                idx = todo[s:s + self.batch_size]
                zt = torch.from_numpy(zs[idx]).to(self.device)
                if self._fast_generator is not None:
                    vox = self._fast_generator(zt.to(self.amp_dtype or torch.float32))
                else:
                    with autocast(self.device, self.amp_dtype):
                        vox = self.generator(zt)
                grids = vox.float().cpu().numpy()
                out[idx] = grids
                if use_cache:
                    for j, i in enumerate(idx):
                        self._cache[zs[i].tobytes()] = grids[j]
                        if len(self._cache) > self._cache_size:
                            self._cache.popitem(last=False)
        self.last_generate_ms = (time.perf_counter() - t0) * 1000
        return out

    def project(self, voxels: np.ndarray, *, steps: int = 200, restarts: int = 4, seed: int = 0,
                progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, float]:
        """z whose shape best matches ``voxels`` (R, R, R), and the IoU reached."""
        with self.lock:
            return project(self.generator, voxels, steps=steps, restarts=restarts, seed=seed, device=self.device,
                           progress=progress)

    def features(self, voxels: np.ndarray, kind: str = "paper") -> np.ndarray:
        """Discriminator features of grids (N, R, R, R): "paper" (pooled conv 2-4, the SVM's) or "last"
        (the last conv layer, the paper's choice for nearest-neighbour retrieval). See gan_core.d_features."""
        if self.discriminator is None:
            raise Gan3dError(f"model {self.name!r} has no discriminator, so no features; use a full checkpoint")
        with self.lock:
            return extract_features(self.discriminator, voxels, kind=kind, device=self.device,
                                    amp_dtype=self.amp_dtype)

    def encode_image(self, image: ImageLike) -> np.ndarray:
        """z (z_dim,) for an image (path, PIL image or array), by the 3D-VAE-GAN encoder: the posterior mean."""
        if self.encoder is None:
            raise Gan3dError(f"model {self.name!r} has no image encoder; train one with `gan3d train-vae`")
        with self.lock:
            return encode_image(self.encoder, image, device=self.device)

    def reconstruct_image(self, image: ImageLike, *, level: float = 0.5) -> tuple[np.ndarray, np.ndarray, Confidence]:
        """Voxels (R, R, R), z and how far to trust them (:class:`gan_core.recon_confidence.Confidence`: a score,
        below 0.5 a warning, and the reasons) for an image: the same voxels and z as encode_image + generate."""
        if self.encoder is None:
            raise Gan3dError(f"model {self.name!r} has no image encoder; train one with `gan3d train-vae`")
        with self.lock:
            if not self._familiarity_read:  # the encoder's calibration file, looked up once
                self._familiarity = load_familiarity(self.checkpoint_path, self.encoder)
                self._familiarity_read = True
            picture, z, feats = encode_picture(self.encoder, image, self._familiarity, device=self.device)
        voxels = self.generate(z[None])[0]
        return voxels, z, judge_result(picture, feats, voxels, self._familiarity, level)

    def weights_hash(self, part: str = "discriminator") -> str:
        """A short hash of one network's weights (feature banks record the discriminator's)."""
        net = getattr(self, part)
        if net is None:
            raise Gan3dError(f"model {self.name!r} has no {part}")
        return weights_hash(net)

    def clear_cache(self) -> None:
        with self.lock:
            self._cache.clear()

    def __repr__(self) -> str:
        return f"Model({self.name!r}, profile={self.profile.name}, device={self.device})"
