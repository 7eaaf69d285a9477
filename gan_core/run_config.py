"""The settings of a training run: one frozen dataclass per trainer over a shared base, each field carrying its
command-line flag (help, choices, the flag's name), so that ``gan3d train`` and ``gan3d train-vae`` build their
flags from here and every default lives in one place.

:class:`RunConfig` holds what every trainer takes (data, run directory, profile, epochs, batch size, learning
rates and betas, seed, device, precision, threads, checkpoint cadence, resume); :class:`TrainConfig` (the 3D-GAN,
:mod:`gan_core.train`) and :class:`VaeTrainConfig` (the 3D-VAE-GAN, :mod:`gan_core.vae_train`) add their own. A field
left None takes the profile's value (:meth:`RunConfig.resolved_profile`; the paper's, where it has one) or, for
the 3D-GAN, its recipe's first (``config.RECIPES``). No torch here: the CLI imports this to build its parser.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Callable, ClassVar

from gan_core.config import AUGMENTS, D_NORMS, ENCODERS, LOSSES, PROFILES, RECIPES, Profile, get_profile
from gan_core.errors import BadInputError

FLOAT32_MAX = 3.4028234663852886e38  # torch.finfo(torch.float32).max: Adam keeps lr as float32, larger overflows

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
RECON_LOSSES = ("mse", "bce")  # the 3D-VAE-GAN's reconstruction loss (gan3d train-vae --recon-loss)
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"
FIELD_DEFAULT: Any = object()  # Flag.cli_default: the command's default is the field's


def precision_help(what: str) -> str:
    """--precision's help, one text for every command (``what``: inference or autocast)."""
    return (f"{what} precision (auto: bf16 on CPUs where it measures faster than fp32, else fp32, which a CUDA GPU "
            "runs on TF32 tensor cores; bf16 pays on a GPU only for large batches)")


@dataclass(frozen=True)
class Flag:
    """How a run-config field appears on the command line (``dataclasses.field(metadata={"flag": Flag(...)})``).

    ``name``: the flag (default ``--`` and the field's name with dashes); ``cli_default``: the command's default
    where it differs from the library's (``--recipe``); ``type``: what turns the text into the value (default:
    the field's type); a bool field is a switch (``--no-X`` where its default is True); ``off``/``off_help``: a
    second switch that sets it False (a three-state bool that defaults to None)."""

    help: str
    name: str | None = None
    choices: tuple[str, ...] | None = None
    type: Callable[[str], Any] | None = None
    cli_default: Any = FIELD_DEFAULT
    off: str | None = None
    off_help: str | None = None

    def default(self, f: dataclasses.Field) -> Any:
        """The command's default for field ``f`` (MISSING: a required flag)."""
        return f.default if self.cli_default is FIELD_DEFAULT else self.cli_default


def setting(default: Any = MISSING, help: str | None = None, *, profile: bool = False, **flag: Any) -> Any:
    """A run-config field: its default, its flag's help (None: no flag, code only) and the rest of :class:`Flag`;
    ``profile``: a Profile field of the same name that this one replaces where it is not None."""
    meta: dict[str, Any] = {"profile": profile}
    if help is not None:
        meta["flag"] = Flag(help, **flag)
    return dataclasses.field(default=default, metadata=meta)


def redefault(base: type, name: str, default: Any) -> Any:
    """``base``'s field ``name`` (its flag, help and all) with another default, for a subclass."""
    return dataclasses.field(default=default, metadata=base.__dataclass_fields__[name].metadata)  # type: ignore[attr-defined]


def comma_list(text: str | None) -> list[str] | None:
    """'chair,sofa' -> ['chair', 'sofa']; None or '' -> None (all classes)."""
    if not text:
        return None
    return [c.strip() for c in text.split(",") if c.strip()] or None


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """What every training run depends on. None means "the profile's value" (the paper's, where it has one)."""

    lr_fields: ClassVar[tuple[str, ...]] = ("g_lr", "d_lr")  # checked as learning rates, in this order
    no_flags: ClassVar[tuple[str, ...]] = ()  # fields of the base that a trainer takes from code only

    data: str = setting(help="voxel set (.npz or .h5) in the documented layout")
    out: str = setting(help="run directory (config.json, metrics.jsonl, checkpoints)")
    profile: str = setting("fast32", "model profile: " + ", ".join(PROFILES))
    classes: list[str] | None = setting(None, "comma-separated class names to train on (default: all)",
                                        type=comma_list)
    limit: int | None = setting(None, "use at most N shapes")
    epochs: int = setting(100, "train until this many epochs are complete")
    batch_size: int | None = setting(None, "batch size per process (profile: paper64 100 as the paper, fast32 64)",
                                     profile=True)
    g_lr: float | None = setting(None, "generator learning rate (profile: the paper's 0.0025)", profile=True)
    d_lr: float | None = setting(None, "discriminator learning rate (profile: the paper's 1e-5)", profile=True)
    seed: int = setting(0, "seed of the data order and z (train-vae: also of the split)")
    device: str = setting("auto", DEVICE_HELP)
    precision: str = setting("auto", precision_help("autocast"), choices=PRECISIONS)
    channels_last: bool = setting(True, "keep the default memory format (channels_last_3d is faster on CPU)",
                                  name="--no-channels-last")
    threads: int | None = setting(None, "CPU threads (default: torch's choice)")
    checkpoint_minutes: float = setting(10.0, "also save latest.pt this often")
    snapshot_every: int = setting(5, "keep epoch_NNNN.pt every N epochs")
    max_steps: int | None = setting(None, "stop after this many steps in total")  # smoke tests, benchmarks
    resume: bool = setting(False, "continue from OUT/latest.pt if it exists")
    log_every: int = setting(1)  # a metrics line every this many steps
    beta1: float | None = setting(None, "Adam beta1 (paper 0.5)", profile=True)
    beta2: float | None = setting(None, "Adam beta2 (0.999)", profile=True)
    d_acc_threshold: float | None = setting(
        None, "update D only while its batch accuracy is below this (paper 0.8; 1: at every step)", profile=True)

    def resolved_profile(self) -> Profile:
        """The profile with this run's values of its fields where they are set."""
        changes = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if f.metadata.get("profile") and getattr(self, f.name) is not None}
        return get_profile(self.profile).replace(**changes)

    def validate(self) -> None:
        """Check the settings, naming the flag (BadInputError)."""
        if self.epochs < 1:
            raise BadInputError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 2:
            raise BadInputError(f"--batch-size must be >= 2 (BatchNorm), got {self.batch_size}")
        for k in self.lr_fields:
            v = getattr(self, k)
            if v is not None and not (0 < v <= FLOAT32_MAX):
                raise BadInputError(f"--{k.replace('_', '-')} must be a positive number below 3.4e38, got {v}")
        if self.d_acc_threshold is not None and not 0 < self.d_acc_threshold <= 1:
            raise BadInputError(f"--d-acc-threshold must be in (0, 1], got {self.d_acc_threshold}")
        if self.snapshot_every < 1:
            raise BadInputError(f"--snapshot-every must be >= 1, got {self.snapshot_every}")
        if self.log_every < 1:
            raise BadInputError(f"log_every must be >= 1, got {self.log_every}")

    def _fill(self, name: str, value: Any) -> None:
        """Set a field while the instance is made (``__post_init__``: resolving a None)."""
        object.__setattr__(self, name, value)

    @classmethod
    def flags(cls) -> list[tuple[dataclasses.Field, Flag, type]]:
        """The fields that are command-line flags, in order: (field, its :class:`Flag`, its value type)."""
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            flag = f.metadata.get("flag")
            if flag is None or f.name in cls.no_flags:
                continue
            args = [a for a in typing.get_args(hints[f.name]) if a is not type(None)]
            out.append((f, flag, args[0] if len(args) == 1 else hints[f.name]))
        return out


def _recipe_text(name: str) -> str:
    return ", ".join(f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}"
                     for k, v in RECIPES[name].items())


RECIPE_HELP = ("settings for the flags above, --g-lr / --d-lr and --batch-size that you leave out (default fast: it "
               "won the equal-CPU comparison in benchmarks/RESULTS.md, 2026-12-07): "
               + "; ".join(f"{name} ({_recipe_text(name) or 'the paper: Wu et al. 2016'})" for name in RECIPES))

# the recipe fields that are left at these (the paper's) when neither the flag nor the recipe sets them
_PAPER_DEFAULTS: dict[str, Any] = {"label_smoothing": 0.0, "instance_noise": 0.0, "ema_kimg": 0.0, "loss": "bce",
                                   "r1_gamma": 0.0, "augment": "none"}


@dataclass(frozen=True, kw_only=True)
class TrainConfig(RunConfig):
    """Everything a 3D-GAN run depends on (:mod:`gan_core.train`). None means "the profile's value" (the paper's,
    where it has one), after the recipe's (``recipe``, config.RECIPES)."""

    z_prior: str | None = setting(None, "latent prior (profile: normal)", choices=("normal", "uniform"),
                                  profile=True)
    label_smoothing: float | None = setting(None, "D's real target is 1 - this (paper: 0)")
    instance_noise: float | None = setting(  # std of Gaussian noise added to D's inputs, annealed to 0
        None, "std of noise added to D's inputs, annealed to 0 over the run (paper: 0)")
    ema_kimg: float | None = setting(
        None, "keep a moving average of G's weights with this half-life in thousands of training images, and "
              "publish it as the checkpoint's generator (paper: 0, off)")
    loss: str | None = setting(None, "GAN loss: bce (the paper's; G's side non-saturating) or hinge", choices=LOSSES)
    r1_gamma: float | None = setting(
        None, "weight of the R1 penalty on D's input gradient at real shapes (paper: 0, off)")
    r1_every: int = setting(4, "apply R1 at every Nth step, scaled by N (lazy)")
    augment: str | None = setting(
        None, "D sees real and fake shapes through this: shift moves each by up to 2 voxels (paper: none)",
        choices=AUGMENTS)
    d_norm: str | None = setting(None, "D's normalisation: batch (the paper) or spectral (spectral norm, no BatchNorm)",
                                 choices=D_NORMS, profile=True)
    recipe: str = setting("paper", RECIPE_HELP, choices=tuple(RECIPES), cli_default="fast")
    init_from: str | None = setting(  # fine-tuning
        None, "start from another checkpoint's G and D weights (D anew when it has none)")
    n_preview: int = setting(16)  # fixed-z samples written after each epoch

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise BadInputError(f"unknown recipe {self.recipe!r}; use {', '.join(RECIPES)}")
        for name, value in RECIPES[self.recipe].items():
            if getattr(self, name) is None:
                self._fill(name, value)
        for name, value in _PAPER_DEFAULTS.items():
            if getattr(self, name) is None:
                self._fill(name, value)

    def validate(self) -> None:
        super().validate()
        if not 0 <= self.label_smoothing < 0.5:
            raise BadInputError(f"--label-smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if not (self.ema_kimg >= 0 and math.isfinite(self.ema_kimg)):
            raise BadInputError(f"--ema-kimg must be 0 (off) or a positive number, got {self.ema_kimg}")
        if self.loss not in LOSSES:
            raise BadInputError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not (self.r1_gamma >= 0 and math.isfinite(self.r1_gamma)):
            raise BadInputError(f"--r1-gamma must be 0 (off) or a positive number, got {self.r1_gamma}")
        if self.r1_every < 1:
            raise BadInputError(f"--r1-every must be >= 1, got {self.r1_every}")
        if self.augment not in AUGMENTS:
            raise BadInputError(f"--augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")



@dataclass(frozen=True, kw_only=True)
class VaeTrainConfig(RunConfig):
    """Everything a 3D-VAE-GAN run depends on (:mod:`gan_core.vae_train`). None means "the profile's value" (the
    paper's, where it has one)."""

    lr_fields = ("e_lr", "g_lr", "d_lr")
    no_flags = ("beta1", "beta2", "d_acc_threshold")  # gan3d train-vae takes the profile's (the paper's)

    epochs: int = redefault(RunConfig, "epochs", 20)
    renders: str = setting(help="render cache of --data (.h5, from `gan3d render`); rendered here first if missing")
    from_gan: str | None = setting(None, "initialise G and D from a trained 3D-GAN checkpoint")
    freeze_generator: bool | None = setting(  # None: True with from_gan, else False
        None, "train only the encoder (default when --from-gan is given)",
        off="--train-generator", off_help="with --from-gan, also train G and D (the full VAE-GAN objective)")
    encoder_from: str | None = setting(
        None, "start the encoder from another VAE-GAN checkpoint's (its generator may differ: a per-category "
              "encoder begins from the all-class one)")
    e_lr: float = setting(2e-4, "encoder learning rate (Adam)")  # the paper gives none for E: Adam as for G and D
    kl_weight: float | None = setting(
        None, "a1 on KL(q(z|y)||p(z)) averaged over z dims and batch (profile: the paper's 5)", profile=True)
    recon_weight: float | None = setting(
        None, "a2 on ||G(E(y)) - x||^2 summed over voxels, mean over batch (profile: the paper's 1e-4)", profile=True)
    gan_weight: float = setting(
        1.0, "weight of L_GAN in G's loss with --train-generator (1: the paper; 0: no discriminator, G and E learn "
             "reconstruction only, a 3D-VAE, faster and steadier on a small budget)")
    recon_loss: str = setting(
        "mse", "mse: the paper's squared error; bce: cross-entropy on G's logits (learns through a confident, "
               "saturated generator); both summed over voxels, mean over batch", choices=RECON_LOSSES)
    pos_weight: float = setting(
        1.0, "with --recon-loss bce: weight of occupied voxels (>1 keeps thin parts such as chair legs above the iso "
             "level; the share of empty to occupied voxels balances them fully)")
    holdout: float = setting(0.1, "share of shapes kept out of training (by --seed)")
    min_voxels: int = setting(32, "skip shapes with fewer occupied voxels")  # broken voxelisations
    views: int = setting(4, "views per shape when the renders are made here")
    encoder: str | None = setting(  # models.build_encoder; None: the profile's
        None, "image encoder: paper (the paper's five conv layers) or resnet (a small residual CNN with global "
              "pooling; not the paper's) (default: the profile's, paper)", choices=ENCODERS, profile=True)
    image_augment: bool = setting(  # gan_core.image_augment
        False, "change each training image anew on the fly: box zoom / shift / tilt, colour, gamma, blur, noise, "
               "occluders (for photo-style renders and real photos)")
    render_seed: int = setting(0)
    eval_shapes: int = setting(64)  # held-out shapes scored after each epoch

    @property
    def frozen(self) -> bool:
        return bool(self.from_gan) if self.freeze_generator is None else bool(self.freeze_generator)

    def validate(self) -> None:
        super().validate()
        if not (self.pos_weight > 0 and math.isfinite(self.pos_weight)):
            raise BadInputError(f"--pos-weight must be a number > 0, got {self.pos_weight}")
        for k in ("kl_weight", "recon_weight", "gan_weight"):
            v = getattr(self, k)
            if v is not None and not (v >= 0 and math.isfinite(v)):
                raise BadInputError(f"--{k.replace('_', '-')} must be a number >= 0, got {v}")
        if not 0 <= self.holdout < 1:
            raise BadInputError(f"--holdout must be in [0, 1), got {self.holdout}")
        if self.views < 1:
            raise BadInputError(f"--views must be >= 1, got {self.views}")
        if self.encoder is not None and self.encoder not in ENCODERS:
            raise BadInputError(f"--encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.recon_loss not in RECON_LOSSES:
            raise BadInputError(f"--recon-loss must be mse or bce, got {self.recon_loss!r}")
        if self.freeze_generator and not self.from_gan:
            raise BadInputError("--freeze-generator needs --from-gan (a frozen untrained generator cannot learn)")
        if self.encoder_from and not self.from_gan:
            raise BadInputError("--encoder-from needs --from-gan (the generator the encoder learns to drive)")


__all__ = ["DEVICE_HELP", "FLOAT32_MAX", "Flag", "PRECISIONS", "RunConfig", "TrainConfig", "VaeTrainConfig", "comma_list",
           "precision_help", "redefault", "setting"]
