"""3D-VAE-GAN training (Wu et al. 2016, section 3.2): an image encoder E in front of the 3D-GAN's generator.

The objective and its reductions are in :mod:`gan_core.vae_objective`. E is trained on a1 * kl + a2 * recon
only. G is trained on L_GAN's generator side (D fooled by G(z) and by G(E(y))) plus a2 * recon; D on real x
against G(z) and G(E(y)) with the 3D-GAN's adaptive step (updated only while its batch accuracy is below the
threshold). With ``freeze_generator`` (the default with ``from_gan``) G and D keep the GAN's weights, G runs
in eval mode (the BatchNorm statistics it is used with), and only E learns: L_GAN does not depend on E, so D
is not needed and is not updated. That is ~3x cheaper per step.

A deterministic held-out part of the data (by ``seed``) never enters training; its file rows are stored in
every checkpoint (``state["holdout_rows"]``), so ``gan3d evaluate-recon`` evaluates on the same shapes.

The run directory is the one :mod:`gan_core.training_loop` writes for every trainer: ``config.json``,
``metrics.jsonl`` (epoch lines carry held-out IoU), ``latest.pt`` (kind "vaegan") and ``epoch_NNNN.pt``.
A loss or weight that becomes NaN / Inf stops the run with a TrainingDivergedError; latest.pt keeps the
last good state.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from gan_core.checkpoint import load_checkpoint, load_weights
from gan_core.config import Profile, check_same_architecture
from gan_core.data.dataset import VoxelDataset
from gan_core.device import autocast, pick_device
from gan_core.errors import BadCheckpointError, BadInputError, ProfileMismatchError
from gan_core.files import file_sha256
from gan_core.latent import sample_z
from gan_core.models import (Discriminator, Generator, bce_logits, build_encoder, kl_divergence,
                             recalibrate_batchnorm, reparameterize)
from gan_core.run_config import VaeTrainConfig
from gan_core.training_loop import EpochTrainer, d_gate_open, gated_d_step, mean_of, open_voxels
from gan_core.vae_objective import batch_iou, generator_logits, holdout_split, recon_bce, recon_loss, spread

log = logging.getLogger(__name__)

__all__ = ["VaeTrainConfig", "VaeTrainer", "generator_logits", "holdout_split", "recon_bce", "recon_loss", "spread"]


def images_to_tensor(images_u8: np.ndarray, device: torch.device | str,
                     memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """Pictures (B, S, S, 3) uint8 as the encoder takes them: (B, 3, S, S) float in [0, 1] on ``device``."""
    y = torch.from_numpy(images_u8).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    return y.contiguous(memory_format=torch.channels_last) if memory_format == torch.channels_last else y


class VaeTrainer(EpochTrainer):
    """One 3D-VAE-GAN run. ``run()`` trains to ``config.epochs``; ``on_step`` observes each step."""

    kind = "vaegan"
    lr_flags = "--e-lr / --g-lr / --d-lr"

    def __init__(self, config: VaeTrainConfig, on_step: Callable[[dict], None] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        config.validate()
        self.cfg = config
        self.on_step = on_step
        self.device = pick_device(config.device)
        self._begin(config)
        self.profile = p = config.resolved_profile()
        stored, self.data = open_voxels(config, p.resolution)
        self.data_hash = self.data.content_hash()
        self.data_sha256 = file_sha256(self.data.path)
        self.renders = self._open_renders(stored, progress)
        self.render_rows = self.renders.rows_for(self.data.indices)  # dataset position -> cache row
        torch.manual_seed(config.seed)
        self.G = Generator(p).to(self.device, memory_format=self.memory_format)
        self.D = Discriminator(p).to(self.device, memory_format=self.memory_format)
        self.E = build_encoder(p).to(self.device, memory_format=self._image_format)
        self.opt_e = torch.optim.Adam(self.E.parameters(), lr=config.e_lr, betas=(p.beta1, p.beta2))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=p.g_lr, betas=(p.beta1, p.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=p.d_lr, betas=(p.beta1, p.beta2))
        self.z_gen = torch.Generator().manual_seed(config.seed * 1000 + 7)
        self.train_pos, self.holdout_pos = self._split()
        if config.resume and (self.out / "latest.pt").exists():
            self._resume(self.out / "latest.pt")
        elif config.from_gan:
            self._init_from_gan(config.from_gan)
            if config.encoder_from:
                self._init_encoder_from(config.encoder_from)
        if config.frozen:
            self.G.requires_grad_(False)
            self.D.requires_grad_(False)
        self.eval_pos = spread(self.holdout_pos, config.eval_shapes)  # across the classes, not the first ones
        self.fit_pos = spread(self.train_pos, config.eval_shapes)

    # -- setup ---------------------------------------------------------------------------------------------
    def _open_renders(self, stored: VoxelDataset, progress: Callable[[int, int], None] | None):
        from gan_core.data.render_cache import RenderSet, render_dataset

        path = Path(self.cfg.renders)
        if not path.exists():
            log.warning("%s does not exist: rendering %d shapes x %d views first", path, len(stored), self.cfg.views)
            render_dataset(stored, path, views=self.cfg.views, size=self.profile.image_size,
                           seed=self.cfg.render_seed, progress=progress)
        rs = RenderSet(path)
        if rs.data_sha256 != self.data_sha256:
            rs.close()
            raise BadInputError(f"--renders {path} was rendered from another data file; render {self.data.path} "
                                "into a new file")
        if rs.size != self.profile.image_size:
            rs.close()
            raise ProfileMismatchError(f"--renders {path} holds {rs.size} px images but profile "
                                       f"{self.profile.name!r} needs {self.profile.image_size}; render again "
                                       f"with --size {self.profile.image_size}")
        return rs

    def _split(self) -> tuple[np.ndarray, np.ndarray]:
        train, hold = holdout_split(len(self.data), self.cfg.holdout, self.cfg.seed)
        ok = self.data.voxel_counts() >= self.cfg.min_voxels
        skipped = int((~ok).sum())
        if skipped:
            log.warning("skipping %d shapes with fewer than %d occupied voxels", skipped, self.cfg.min_voxels)
        self.n_skipped = skipped
        train, hold = train[ok[train]], hold[ok[hold]]
        if len(train) < self.profile.batch_size:
            raise BadInputError(f"{len(train)} training shapes is fewer than one batch of {self.profile.batch_size}; "
                                "lower --batch-size or --holdout")
        return train, hold

    def _init_from_gan(self, path: str) -> None:
        ck = load_checkpoint(path)
        gp: Profile = ck["profile"]
        # the generator must match; an encoder of another kind is not loaded (a new one is trained in front of G)
        same_encoder = gp.encoder == self.profile.encoder
        check_same_architecture(gp if same_encoder else gp.replace(encoder=self.profile.encoder, e_kernels=self.profile.e_kernels,
                                                                   e_strides=self.profile.e_strides,
                                                                   e_channels=self.profile.e_channels),
                                self.profile, f"--from-gan {path}")
        if gp.z_prior != self.profile.z_prior:
            raise ProfileMismatchError(f"--from-gan {path}: its generator uses a {gp.z_prior} prior, the encoder's "
                                       f"KL term assumes {self.profile.z_prior}")
        load_weights(self.G, ck, "generator")
        if "discriminator" in ck:
            load_weights(self.D, ck, "discriminator")
        elif not self.cfg.frozen and self.cfg.gan_weight > 0:  # D is trained only for L_GAN
            raise BadCheckpointError(f"--from-gan {path}: has no discriminator; add --freeze-generator "
                                     "or --gan-weight 0")
        if "encoder" in ck and same_encoder:  # fine-tuning a VAE-GAN checkpoint: keep its encoder too
            load_weights(self.E, ck, "encoder")
        log.info("initialised G and D from %s", path)

    def _init_encoder_from(self, path: str) -> None:
        """Take another run's encoder weights (same encoder architecture and image size; any generator)."""
        ck = load_checkpoint(path)
        if "encoder" not in ck:
            raise BadCheckpointError(f"--encoder-from {path}: has no image encoder")
        ep: Profile = ck["profile"]
        if (ep.encoder, ep.image_size, ep.z_dim) != (self.profile.encoder, self.profile.image_size, self.profile.z_dim):
            raise ProfileMismatchError(f"--encoder-from {path}: a {ep.encoder} encoder of {ep.image_size} px images "
                                       f"to z({ep.z_dim}); this run needs {self.profile.encoder}, "
                                       f"{self.profile.image_size} px, z({self.profile.z_dim})")
        load_weights(self.E, ck, "encoder")
        log.info("encoder initialised from %s", path)

    def _resume(self, path: Path) -> None:
        ck = load_checkpoint(path, map_location="cpu")
        if ck.get("kind") != "vaegan":
            raise ProfileMismatchError(f"{path} is a {ck.get('kind')} checkpoint, not a VAE-GAN run; use a new --out")
        self._check_resumable(ck, path)
        for net, key in ((self.G, "generator"), (self.D, "discriminator"), (self.E, "encoder")):
            load_weights(net, ck, key)
        st = self._restore_state(ck, path, "use --from-gan")
        if bool(st.get("freeze_generator")) != self.cfg.frozen:
            raise ProfileMismatchError(f"{path} was trained with freeze_generator={bool(st.get('freeze_generator'))}; "
                                       "resume with the same setting")
        with self._reading_state(path):
            # The stored split wins: a run keeps its held-out shapes whatever the defaults do later.
            rows = np.asarray(self.data.indices)
            pos_of = {int(r): i for i, r in enumerate(rows)}
            self.holdout_pos = np.array([pos_of[int(r)] for r in st["holdout_rows"]], np.int64)
            self.train_pos = np.array([pos_of[int(r)] for r in st["train_rows"]], np.int64)
        log.info("resumed %s at epoch %d step %d", path, self.epoch, self.step)

    def _models(self) -> dict[str, nn.Module]:
        return {"generator": self.G, "discriminator": self.D, "encoder": self.E}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"e": self.opt_e, "g": self.opt_g, "d": self.opt_d}

    def _learning_rates(self) -> dict[str, float]:
        return {"e": self.cfg.e_lr, "g": self.profile.g_lr, "d": self.profile.d_lr}

    def _state_extras(self) -> dict[str, Any]:
        """The split, the render settings and the objective's weights: what evaluate-recon and a resume need."""
        rows = np.asarray(self.data.indices)
        return {"holdout_rows": [int(r) for r in rows[self.holdout_pos]],
                "train_rows": [int(r) for r in rows[self.train_pos]],
                "data_sha256": self.data_sha256, "render_seed": int(self.renders.seed),
                "freeze_generator": self.cfg.frozen, "kl_weight": self.profile.kl_weight,
                "recon_weight": self.profile.recon_weight, "recon_loss": self.cfg.recon_loss}

    def _meta_extras(self) -> dict[str, Any]:
        return {"renders": str(self.renders.path), "render_style": self.renders.style, "from_gan": self.cfg.from_gan,
                "reductions": "recon: SSE summed over voxels, mean over batch; kl: mean over z dims and batch"}

    # -- data ----------------------------------------------------------------------------------------------
    def _batches(self) -> list[np.ndarray]:
        g = torch.Generator().manual_seed(self.cfg.seed + self.epoch)
        perm = self.train_pos[torch.randperm(len(self.train_pos), generator=g).numpy()]
        bs = self.profile.batch_size
        n = len(perm) // bs
        return [perm[i * bs:(i + 1) * bs] for i in range(n)]

    def read_batch(self, positions: np.ndarray, views: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Targets (B, R, R, R) uint8 and images (B, S, S, 3) uint8 of dataset positions, one view each."""
        return self.data.read(positions), self.renders.images(self.render_rows[positions], views)

    def _views_for(self, batch_index: int, n: int) -> np.ndarray:
        """Which cached view each shape of a batch uses: depends on (seed, epoch, batch) only, so resume matches."""
        g = np.random.default_rng([self.cfg.seed, self.epoch, batch_index, 0x71E])
        return g.integers(0, self.renders.views, n)

    # -- training ------------------------------------------------------------------------------------------
    @property
    def _image_format(self) -> torch.memory_format:
        # the residual encoder runs ~1.5x faster channels-last on a CPU (the paper's, measured, hardly)
        resnet = self.profile.encoder == "resnet"
        return torch.channels_last if self.cfg.channels_last and resnet else torch.contiguous_format

    def _images(self, images_u8: np.ndarray) -> torch.Tensor:
        return images_to_tensor(images_u8, self.device, self._image_format)

    def _augmented(self, y: torch.Tensor) -> torch.Tensor:
        """--image-augment: each image changed anew (draws depend on (seed, step) only, so a resume matches)."""
        from gan_core.image_augment import augment_images

        g = torch.Generator().manual_seed(int(np.random.default_rng([self.cfg.seed, self.step, 0xA06]).integers(2**62)))
        return augment_images(y, g).contiguous(memory_format=self._image_format)

    def train_step(self, vox_u8: np.ndarray, images_u8: np.ndarray) -> dict[str, Any]:
        """One step on targets (B, R, R, R) uint8 and their images (B, S, S, 3) uint8; returns its metrics."""
        t0 = time.perf_counter()
        dev, p, frozen = self.device, self.profile, self.cfg.frozen
        a1, a2 = p.kl_weight, p.recon_weight
        x = torch.from_numpy(vox_u8).to(dev).float()  # (B, R, R, R); uint8 crosses to a GPU, 4x less
        y = self._images(images_u8)
        if self.cfg.image_augment:
            y = self._augmented(y)
        b = x.shape[0]
        self.E.train()
        self.G.train(not frozen)  # frozen: the BatchNorm statistics G is used with
        with autocast(dev, self.amp_dtype):
            mean, logvar = self.E(y)  # (B, z_dim) each
            z_enc = reparameterize(mean.float(), logvar.float())
            logits = generator_logits(self.G, z_enc)  # (B, R, R, R)
            rec = torch.sigmoid(logits)
        kl_total = kl_divergence(mean.float(), logvar.float())  # summed over z, mean over batch
        kl = kl_total / p.z_dim  # per latent dimension: the quantity a1 weighs
        sse = recon_loss(rec, x)
        recon = sse if self.cfg.recon_loss == "mse" else recon_bce(logits, x, self.cfg.pos_weight)
        loss_e = a1 * kl + a2 * recon
        out: dict[str, Any] = {}
        if frozen:
            self.opt_e.zero_grad(set_to_none=True)
            self.scaler.scale(loss_e).backward()
            self.scaler.step(self.opt_e)
        elif self.cfg.gan_weight == 0:
            # G's loss is then a2 * recon, which is loss_e's dependence on G: one backward serves both.
            self.opt_e.zero_grad(set_to_none=True)
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(loss_e).backward()
            self.scaler.step(self.opt_e)
            self.scaler.step(self.opt_g)
        else:
            out = self._gan_step(x, rec, loss_e, recon, b)
        self.scaler.update()
        self.step += 1
        vals = {"kl": float(kl.detach()), "kl_total": float(kl_total.detach()), "recon": float(recon.detach()),
                "sse": float(sse.detach()), "loss_e": float(loss_e.detach())}
        self._check_finite({**vals, **{k: out[k] for k in ("g_loss", "d_loss") if k in out}})
        return {"type": "step", "epoch": self.epoch, "step": self.step, **vals, "iou": batch_iou(rec.float(), x),
                "mean_abs_z": float(mean.detach().float().abs().mean()),
                "sigma": float(torch.exp(0.5 * logvar.detach().float()).mean()), **out,
                "time": time.perf_counter() - t0}

    def _gan_step(self, x: torch.Tensor, rec: torch.Tensor, loss_e: torch.Tensor, recon: torch.Tensor,
                  b: int) -> dict[str, Any]:
        """D on real vs G(z) and G(E(y)) (gated); G on fooling D plus a2 * recon; E on its own loss only."""
        dev, p = self.device, self.profile
        z = sample_z(b, p, generator=self.z_gen).to(dev)
        xr = x.unsqueeze(1).contiguous(memory_format=self.memory_format)
        with autocast(dev, self.amp_dtype):
            fake = self.G(z)  # (B, R, R, R)
            # detached copies that take a gradient: when D is not updated, G's L_GAN reuses these passes
            fake_in, rec_in = (t.detach().unsqueeze(1).requires_grad_(True) for t in (fake, rec))
            d_real = self.D.logits(xr)
            d_fake = self.D.logits(fake_in)
            d_rec = self.D.logits(rec_in)
            d_loss = bce_logits(d_real, 1.0) + 0.5 * (bce_logits(d_fake, 0.0) + bce_logits(d_rec, 0.0))
        with torch.no_grad():
            d_acc = 0.5 * ((d_real > 0).float().mean() + 0.5 * ((d_fake < 0).float().mean() + (d_rec < 0).float().mean()))
        update_d = d_gate_open(d_acc, p.d_acc_threshold)
        # E learns from KL + recon only (the paper), G from L_GAN + recon: two backward passes, each into its own
        # parameters (the first keeps the graph G's pass still needs)
        self.opt_e.zero_grad(set_to_none=True)
        self.scaler.scale(loss_e).backward(inputs=list(self.E.parameters()), retain_graph=True)
        g_gan = gated_d_step(update_d, d_loss, D=self.D, opt_d=self.opt_d, scaler=self.scaler,
                             g_params=list(self.G.parameters()), opt_g=self.opt_g, copies=[fake_in, rec_in],
                             originals=[fake, rec], d_logits=[d_fake, d_rec],
                             g_adv=lambda logits: bce_logits(logits[0], 1.0) + bce_logits(logits[1], 1.0),
                             d_view=lambda x: x.unsqueeze(1), amp=lambda: autocast(dev, self.amp_dtype),
                             g_weight=self.cfg.gan_weight, g_extra=p.recon_weight * recon)
        self.scaler.step(self.opt_e)
        self.scaler.step(self.opt_g)
        return {"g_loss": float(g_gan.detach()), "d_loss": float(d_loss.detach()), "d_acc": float(d_acc),
                "d_updated": update_d}

    @torch.no_grad()
    def evaluate(self, positions: np.ndarray, view: int = 0) -> dict[str, float]:
        """Posterior-mean reconstructions of ``positions`` from one cached view: IoU (plain and best of 4
        rotations about the up axis), recon (the squared error, whatever the training loss) and KL, in eval
        mode."""
        from gan_core.reconstruct import best_rotation_iou, iou

        if len(positions) == 0:
            return {}
        self.E.eval()
        self.G.eval()
        ious, rot_ious, recons, kls = [], [], [], []
        for i in range(0, len(positions), 32):
            vox, imgs = self.read_batch(positions[i:i + 32], view)
            with autocast(self.device, self.amp_dtype):
                mean, logvar = self.E(self._images(imgs))
                prob = self.G(mean.float()).float()  # (B, R, R, R)
            x = torch.from_numpy(vox).to(self.device, torch.float32)
            recons.append(float(recon_loss(prob, x)) * len(vox))
            kls.append(float(kl_divergence(mean.float(), logvar.float())) / self.profile.z_dim * len(vox))
            pn = prob.cpu().numpy()
            for pr, t in zip(pn, vox):
                ious.append(iou(pr > 0.5, t))
                rot_ious.append(best_rotation_iou(pr, t)[0])
        n = len(positions)
        return {"iou": float(np.mean(ious)), "iou_rot": float(np.mean(rot_ious)), "recon": sum(recons) / n,
                "kl": sum(kls) / n}

    def _train_batch(self, index: int, batch: np.ndarray) -> dict[str, Any]:
        return self.train_step(*self.read_batch(batch, self._views_for(index, len(batch))))

    def _postfix(self, m: dict[str, Any]) -> dict[str, str]:
        return {"kl": f"{m['kl']:.3f}", "recon": f"{m['recon']:.0f}", "iou": f"{m['iou']:.2f}"}

    def _config_record(self) -> dict[str, Any]:
        cfg = self.cfg
        return {"type": "config", "kind": "vaegan", "config": dataclasses.asdict(cfg), "profile": self.profile.to_dict(),
                "device": str(self.device), "precision": str(self.amp_dtype), "frozen_generator": cfg.frozen,
                "n_shapes": len(self.data), "n_train": len(self.train_pos), "n_holdout": len(self.holdout_pos),
                "n_skipped": self.n_skipped, "render_views": self.renders.views, "render_style": self.renders.style,
                "resumed_at_step": self.step,
                "reductions": {"recon": "squared error summed over voxels, mean over batch",
                               "kl": "mean over z dims and batch (kl_total: summed over z)"}}

    @torch.no_grad()
    def recalibrate_bn(self, batches: int = 8) -> None:
        """Recompute a trained G's BatchNorm statistics over the encoder's posterior means of training images.

        In training G's running statistics mix batches of prior z and of encoder z; reconstruction (eval
        mode) feeds it encoder means only, and with the mixed statistics came out nearly empty.
        """
        self.E.eval()
        g = np.random.default_rng(self.cfg.seed + 991 + self.epoch)
        picks = g.choice(self.train_pos, size=min(len(self.train_pos), batches * self.profile.batch_size),
                         replace=False)

        def means():
            for i in range(0, len(picks), self.profile.batch_size):
                pos = np.sort(picks[i:i + self.profile.batch_size])
                _, imgs = self.read_batch(pos, g.integers(0, self.renders.views, len(pos)))
                yield self.E(self._images(imgs))[0].float()

        with autocast(self.device, self.amp_dtype):
            recalibrate_batchnorm(self.G, means())

    def _epoch_metrics(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Mean step losses, and posterior-mean reconstructions of held-out and training shapes."""
        if not self.cfg.frozen:
            self.recalibrate_bn()
        held = self.evaluate(self.eval_pos)
        fit = self.evaluate(self.fit_pos)
        # Weights can blow up yet stay finite (an lr far too high): then the model's outputs are not, and the
        # epoch's checkpoint must not replace the last good one.
        self._check_finite({f"{part}_{k}": v for part, r in (("heldout", held), ("train", fit))
                            for k, v in r.items() if k in ("recon", "kl")})
        rec: dict[str, Any] = {
            "kl": mean_of(steps, "kl"), "kl_total": mean_of(steps, "kl_total"), "recon": mean_of(steps, "recon"),
            "sse": mean_of(steps, "sse"), "loss_e": mean_of(steps, "loss_e"), "train_batch_iou": mean_of(steps, "iou"),
            **{f"heldout_{k}": v for k, v in held.items()}, **{f"train_{k}": v for k, v in fit.items()},
            "n_heldout_eval": len(self.eval_pos),
        }
        if not self.cfg.frozen and self.cfg.gan_weight > 0 and steps:
            rec.update(g_loss=mean_of(steps, "g_loss"), d_loss=mean_of(steps, "d_loss"), d_acc=mean_of(steps, "d_acc"),
                       d_update_rate=mean_of(steps, "d_updated"))
        return rec

    def close(self) -> None:
        self.renders.close()
        self.data.close()
