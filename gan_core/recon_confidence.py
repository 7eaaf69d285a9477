"""How far to trust a reconstruction from one picture: a confidence in [0, 1] (below 0.5: a warning) and the
reasons, so that a portrait, a blank picture or noise never comes back as a silent furniture slab.

Three parts, each computed from the pass that reconstructs the picture:

* **The picture** (model-agnostic rules on the picture as it is, before framing): *blank* when its brightness,
  averaged over blocks of 1/32 of its short side, spans less than :data:`BLANK_RANGE` (1st to 99th percentile),
  *noise* when neighbouring pixels are nearly uncorrelated (below :data:`NOISE_CORRELATION`; renders are above
  0.42).
* **Familiarity** (per encoder, learned): a logistic regression on the encoder's own pooled activations (mean
  and spread of each channel of its 3rd and 4th conv blocks) that tells the renders it was trained on (training
  shapes, new views, also blurred and JPEG-compressed) from pictures that are not furniture, made by
  :mod:`gan_core.ood_images` (blank, noise, portraits, people, landscapes, text, trees, balls, patterns, cars).
  Its log-odds are shifted so that 0.5 is the 5th percentile of renders of shapes the encoder never trained on:
  ``familiarity = sigmoid(logit - shift)``. Fitted by ``scripts/calibrate_recon_confidence.py`` into a small
  file beside the checkpoint (``<checkpoint stem>_confidence.npz``) that records the encoder's weights hash;
  without one (or for other weights) familiarity is unknown and only the rules speak.
* **The shape**: a reconstruction with no voxel above the level is empty.

The encoder's posterior was tried first and does not tell these apart for the bundled encoder: the KL of q(z|y)
to the prior, the norm of the mean, and a Gaussian (Mahalanobis) fit of the posterior means or of the pooled
activations of renders place blank, noise and portrait pictures as typical as renders (often more); neither do
the judge's class probability nor the bundled GAN's discriminator score of the result. The numbers are in
``assets/README.md``.

Examples
--------
>>> import numpy as np
>>> picture_checks(np.full((64, 80, 3), 0.7, np.float32))["blank"]
True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gan_core.checkpoint import weights_hash
from gan_core.errors import BadCheckpointError, BadInputError
from gan_core.image_input import encoder_inputs, load_image, read_rgb

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

__all__ = [
    "BLANK_RANGE", "FEATURE_BLOCKS", "NOISE_CORRELATION", "WARN_BELOW", "Confidence", "FamiliarityModel",
    "calibration_path", "encode_picture", "encode_with_features", "fit_familiarity",
    "judge_result", "load_familiarity", "picture_checks", "shape_checks", "verdict",
]

BLANK_RANGE = 0.02  # brightness range (1st to 99th percentile of block means) below which a picture is blank
NOISE_CORRELATION = 0.25  # neighbouring-pixel correlation below which a picture is noise
WARN_BELOW = 0.5  # a confidence below this comes with a warning
FEATURE_BLOCKS = (2, 3)  # the encoder's conv blocks (0-based) whose pooled activations familiarity reads
FORMAT = "gan3d-recon-confidence-1"


# -- the picture -------------------------------------------------------------------------------------------
def picture_checks(rgb: np.ndarray) -> dict[str, Any]:
    """Blank and noise tests of a picture as it is, before framing: (H, W, 3) float in [0, 1] (what
    :func:`gan_core.image_input.read_rgb` returns). Big pictures are first reduced by block means to at most
    about 256 pixels a side (white noise stays white; nothing is interpolated up). ``range``: brightness of
    blocks of 1/32 of the short side, 1st to 99th percentile; ``correlation``: of horizontally and vertically
    neighbouring brightness values (1 for a flat picture); ``blank``, ``noise``."""
    x = np.asarray(rgb, np.float64)
    if x.ndim != 3 or x.shape[2] != 3 or min(x.shape[:2]) < 2:
        raise BadInputError(f"expected a picture (H, W, 3), got {x.shape}")
    lum = _block_mean(0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2], max(1, min(x.shape[:2]) // 256))
    blocks = _block_mean(lum, max(1, min(lum.shape) // 32))  # sensor noise on a blank wall averages out
    lo, hi = np.percentile(blocks, [1, 99])
    rng = float(hi - lo)
    d = lum - lum.mean()
    var = float((d * d).mean())
    if var < 1e-10:
        corr = 1.0
    else:
        corr = float(((d[:, 1:] * d[:, :-1]).mean() + (d[1:] * d[:-1]).mean()) / (2 * var))
    blank = rng < BLANK_RANGE
    return {"range": rng, "correlation": corr, "blank": bool(blank),
            "noise": bool(not blank and corr < NOISE_CORRELATION)}


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Means of k x k blocks of a 2D array (the ragged edge dropped)."""
    if k <= 1:
        return a
    h, w = (a.shape[0] // k) * k, (a.shape[1] // k) * k
    return a[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def shape_checks(voxels: np.ndarray, level: float = 0.5) -> dict[str, Any]:
    """``occupied`` (voxels above ``level``), ``empty`` (none) and ``peak`` (the highest probability)."""
    v = np.asarray(voxels)
    occupied = int((v > level).sum())
    return {"occupied": occupied, "empty": occupied == 0, "peak": float(v.max()) if v.size else 0.0}


# -- the encoder's view ------------------------------------------------------------------------------------
def encode_with_features(encoder: "torch.nn.Module", images: np.ndarray, *, blocks: tuple[int, ...] = FEATURE_BLOCKS,
                         device: Any = None, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means (N, z_dim) and pooled activations (N, F) of pictures (N, 3, S, S), in one pass.

    The activations after the ReLU of each conv block in ``blocks`` (of the residual encoder: each stage's output), averaged over the picture and their
    standard deviation over it, per channel. The means equal :func:`gan_core.image_input.encode_images`'s.
    """
    import torch

    imgs, dev = encoder_inputs(encoder, images, device)
    was_training = encoder.training
    encoder.eval()
    means, feats = [], []
    try:
        with torch.no_grad():
            for i in range(0, len(imgs), batch_size):
                h = torch.from_numpy(imgs[i:i + batch_size]).to(dev)
                mean, _, taps = encoder.forward_taps(h)  # the encoder's forward, and each block's output
                pooled = [torch.cat([f.float().mean((2, 3)), f.float().std((2, 3))], 1)
                          for block, f in enumerate(taps) if block in blocks]
                means.append(mean.float().cpu().numpy())
                feats.append(torch.cat(pooled, 1).cpu().numpy() if pooled else np.zeros((len(h), 0), np.float32))
    finally:
        encoder.train(was_training)
    if not means:
        return np.zeros((0, encoder.profile.z_dim), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(means), np.concatenate(feats).astype(np.float32)


@dataclass
class FamiliarityModel:
    """A standardised logistic regression on pooled encoder activations, with its warning shift."""

    mean: np.ndarray  # (F,) standardisation
    scale: np.ndarray  # (F,)
    coef: np.ndarray  # (F,)
    intercept: float
    shift: float  # the logit at which familiarity is 0.5 (the renders' 5th percentile)
    encoder_hash: str  # gan_core.checkpoint.weights_hash of the encoder it was fitted for
    blocks: tuple[int, ...] = FEATURE_BLOCKS
    report: dict[str, Any] = field(default_factory=dict)  # the calibration's numbers (for people)

    def logit(self, features: np.ndarray) -> np.ndarray:
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or f.shape[1] != len(self.coef):
            raise BadInputError(f"familiarity wants (N, {len(self.coef)}) features, got {f.shape}")
        return ((f - self.mean) / self.scale) @ self.coef + self.intercept

    def familiarity(self, features: np.ndarray) -> np.ndarray:
        """(N,) in [0, 1]: 0.5 at the renders' 5th percentile, higher is more like the training pictures."""
        return 1.0 / (1.0 + np.exp(-(self.logit(features) - self.shift)))

    def save(self, path: str | Path) -> Path:
        import json

        from gan_core.files import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, format=np.array(FORMAT), mean=self.mean.astype(np.float32),
                                scale=self.scale.astype(np.float32), coef=self.coef.astype(np.float32),
                                intercept=np.float64(self.intercept), shift=np.float64(self.shift),
                                encoder_hash=np.array(self.encoder_hash), blocks=np.asarray(self.blocks, np.int64),
                                report=np.array(json.dumps(self.report)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FamiliarityModel":
        import json

        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["format"]) != FORMAT:
                    raise BadCheckpointError(f"{path}: not a reconstruction-confidence file ({z['format']})")
                m = cls(mean=z["mean"].astype(np.float64), scale=z["scale"].astype(np.float64),
                        coef=z["coef"].astype(np.float64), intercept=float(z["intercept"]), shift=float(z["shift"]),
                        encoder_hash=str(z["encoder_hash"]), blocks=tuple(int(b) for b in z["blocks"]),
                        report=json.loads(str(z["report"])))
        except (OSError, KeyError, ValueError) as e:
            raise BadCheckpointError(f"{path}: unreadable reconstruction-confidence file ({e})") from None
        if not (m.mean.shape == m.scale.shape == m.coef.shape) or not np.all(m.scale > 0):
            raise BadCheckpointError(f"{path}: malformed reconstruction-confidence file")
        return m


def fit_familiarity(familiar: np.ndarray, unfamiliar: np.ndarray, holdout: np.ndarray, *, encoder_hash: str,
                    c: float = 0.03, quantile: float = 0.05, blocks: tuple[int, ...] = FEATURE_BLOCKS,
                    ) -> FamiliarityModel:
    """Fit familiarity on pooled features: ``familiar`` (renders) against ``unfamiliar`` (non-furniture
    pictures), each side weighted to half; the shift is the ``quantile`` of ``holdout``'s logits (renders of
    shapes and views the fit never saw), so that share of such renders gets a warning."""
    from sklearn.linear_model import LogisticRegression

    pos, neg = np.asarray(familiar, np.float64), np.asarray(unfamiliar, np.float64)
    x = np.concatenate([pos, neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    w = np.r_[np.full(len(pos), 0.5 / len(pos)), np.full(len(neg), 0.5 / len(neg))] * len(x)
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-8] = 1.0
    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit((x - mean) / scale, y, sample_weight=w)
    m = FamiliarityModel(mean, scale, clf.coef_[0].astype(np.float64), float(clf.intercept_[0]), 0.0, encoder_hash,
                         tuple(blocks))
    m.shift = float(np.quantile(m.logit(holdout), quantile))
    return m


def calibration_path(checkpoint: str | Path) -> Path:
    """Where a checkpoint's familiarity file lives: ``<dir>/<stem>_confidence.npz``."""
    p = Path(checkpoint)
    return p.with_name(f"{p.stem}_confidence.npz")


def load_familiarity(checkpoint: str | Path | None, encoder: "torch.nn.Module | None") -> FamiliarityModel | None:
    """The familiarity file of a model's checkpoint when there is one for its ``encoder``'s weights, else None."""
    if encoder is None or checkpoint is None:
        return None
    path = calibration_path(checkpoint)
    if not path.is_file():
        return None
    try:
        fam = FamiliarityModel.load(path)
    except BadCheckpointError as e:
        log.warning("%s", e)
        return None
    if fam.encoder_hash != weights_hash(encoder):
        log.warning("%s: calibrated for other encoder weights; familiarity is not used", path)
        return None
    return fam


# -- the verdict -------------------------------------------------------------------------------------------
@dataclass
class Confidence:
    """A reconstruction's confidence: ``score`` in [0, 1] or None when nothing is calibrated and no rule fired
    (warn below :data:`WARN_BELOW`), the ``warnings`` in words, and the numbers behind them."""

    score: float | None
    warnings: list[str]
    familiarity: float | None = None
    picture: dict[str, Any] = field(default_factory=dict)
    shape: dict[str, Any] = field(default_factory=dict)

    @property
    def low(self) -> bool:
        """True when the result should come with a warning."""
        return bool(self.warnings)

    def label(self) -> str:
        """A short line for people: 'confidence 0.93' or 'LOW confidence 0.04: <the first reason>'."""
        value = "unknown" if self.score is None else f"{self.score:.2f}"
        if not self.warnings:
            return f"confidence {value}" + ("" if self.score is not None else " (not calibrated for this model)")
        return f"LOW confidence {value}: {self.warnings[0]}"

    def to_dict(self) -> dict[str, Any]:
        return {"score": None if self.score is None else round(self.score, 4), "low": self.low,
                "warnings": list(self.warnings),
                "familiarity": None if self.familiarity is None else round(self.familiarity, 4),
                "picture": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.picture.items()},
                "shape": dict(self.shape)}


def verdict(picture: dict[str, Any], shape: dict[str, Any], familiarity: float | None) -> Confidence:
    """The confidence from the three parts: a blank or noise picture scores 0, an unfamiliar one its
    familiarity; an empty shape is a warning of its own."""
    warnings: list[str] = []
    score = familiarity
    if picture.get("blank"):
        warnings.append("the picture is blank (no object to reconstruct)")
        score = 0.0
    elif picture.get("noise"):
        warnings.append("the picture looks like noise, not a photo of an object")
        score = 0.0
    elif familiarity is not None and familiarity < WARN_BELOW:
        warnings.append("the picture does not look like furniture to this encoder; the shape is a guess")
    if shape.get("empty"):
        warnings.append("nothing was reconstructed (no voxel above the level)")
    return Confidence(score, warnings, familiarity, picture, shape)


def encode_picture(encoder: "torch.nn.Module", image: Any, familiarity: FamiliarityModel | None = None, *,
                   device: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``image`` (anything :func:`gan_core.image_input.load_image` takes), frame it as the encoder sees it
    and encode it: (the picture as it is (H, W, 3), z (z_dim,), pooled features (F,)) with the blocks
    ``familiarity`` reads. z equals :func:`gan_core.image_input.encode_image`'s."""
    rgb = read_rgb(image, encoder.profile.image_size)
    x = load_image(rgb, encoder.profile.image_size)
    blocks = familiarity.blocks if familiarity is not None else FEATURE_BLOCKS
    z, feats = encode_with_features(encoder, x[None], blocks=blocks, device=device)
    return rgb, z[0], feats[0]


def judge_result(picture: np.ndarray, features: np.ndarray, voxels: np.ndarray,
                 familiarity: FamiliarityModel | None = None, level: float = 0.5) -> Confidence:
    """The :class:`Confidence` of a reconstruction from its picture (H, W, 3), the encoder's pooled features
    (F,) and the voxels (R, R, R) it gave (``gan_core.model.Model.reconstruct_image`` does all of it)."""
    f = float(familiarity.familiarity(np.asarray(features)[None])[0]) if familiarity is not None else None
    return verdict(picture_checks(picture), shape_checks(voxels, level), f)
