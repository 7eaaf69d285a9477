"""The paper's networks, built from a Profile: Generator, Discriminator (with feature taps), ImageEncoder;
and a stronger image encoder beside the paper's, ResNetEncoder (``build_encoder`` picks by ``profile.encoder``).

Shapes (paper64): z (N, 200) -> G -> (N, 64, 64, 64) in [0, 1]; voxels (N, 64, 64, 64) -> D -> (N,) in [0, 1];
image (N, 3, 256, 256) -> E -> mean, logvar (N, 200) each.
"""

from __future__ import annotations

import copy
import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.nn.utils.parametrizations import spectral_norm

from gan_core.config import Profile
from gan_core.fast_conv import DoublingConvTranspose3d, LatentConvTranspose3d, OneInConv3d, OneOutConvTranspose3d


def _init_weights(m: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02). Nothing on the meta device
    (a network built there is filled from a checkpoint; ``normal_`` on meta tensors imports torch's compiler)."""
    if getattr(getattr(m, "weight", None), "is_meta", False):
        return
    if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d, nn.Conv2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z -> occupancy grid: a 4^3 block from z, then ConvTranspose3d(k4, s2) doublings, BN + ReLU, sigmoid."""

    def __init__(self, profile: Profile) -> None:
        super().__init__()
        self.profile = profile
        ch = profile.g_channels
        layers: list[nn.Module] = [
            LatentConvTranspose3d(profile.z_dim, ch[0]), nn.BatchNorm3d(ch[0]), nn.ReLU(True)  # fast on CPU
        ]
        for a, b in zip(ch, ch[1:]):
            layers += [DoublingConvTranspose3d(a, b), nn.BatchNorm3d(b), nn.ReLU(True)]  # ConvTranspose3d(a, b, 4, 2, 1)
        layers += [OneOutConvTranspose3d(ch[-1]), nn.Sigmoid()]  # ConvTranspose3d(ch[-1], 1, 4, 2, 1), fast on CPU
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        zd = self.profile.z_dim
        assert z.ndim == 2 and z.shape[1] == zd, f"Generator expects z of shape (N, {zd}), got {tuple(z.shape)}"
        x = self.net(z.view(z.shape[0], zd, 1, 1, 1))  # (N, 1, R, R, R)
        return x[:, 0]  # (N, R, R, R)


def inference_generator(g: Generator, dtype: torch.dtype = torch.float32,
                        memory_format: torch.memory_format = torch.contiguous_format) -> Generator:
    """A copy of ``g`` for inference only: each BatchNorm folded into the convolution before it (eval-mode
    statistics) and the weights cast to ``dtype`` once. Autocast would cast them again on every call, a fifth
    of a generated frame on the CPU; call the copy with z in ``dtype``, without autocast."""
    g = copy.deepcopy(g).eval()
    layers: list[nn.Module] = []
    for m in g.net:
        if isinstance(m, nn.BatchNorm3d) and layers and isinstance(layers[-1], nn.ConvTranspose3d):
            layers[-1] = fuse_conv_bn_eval(layers[-1], m, transpose=True)
        else:
            layers.append(m)
    g.net = nn.Sequential(*layers)
    return g.to(dtype=dtype, memory_format=memory_format).requires_grad_(False)


class Discriminator(nn.Module):
    """Mirror of G: Conv3d(k4, s2) halvings with BN + LeakyReLU(0.2), then a 4^3 -> 1 conv (profile ``d_norm``
    "spectral": spectrally normalised convolutions and no BatchNorm).

    ``forward`` gives the probability that each grid is real; ``logits`` the pre-sigmoid score (train with it,
    it is stable in bf16); ``activations`` the output of every hidden block, for features.
    """

    def __init__(self, profile: Profile) -> None:
        super().__init__()
        self.profile = profile
        ch = profile.d_channels
        spectral = profile.d_norm == "spectral"
        blocks = []
        for a, b in zip((1,) + ch[:-1], ch):
            conv = OneInConv3d(b) if a == 1 else nn.Conv3d(a, b, 4, 2, 1, bias=False)  # the first: fast on CPU
            norm: nn.Module = nn.Identity() if spectral else nn.BatchNorm3d(b)
            blocks.append(nn.Sequential(conv, norm, nn.LeakyReLU(0.2, True)))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv3d(ch[-1], 1, 4, 1, 0)
        self.apply(_init_weights)
        if spectral:  # each layer's largest singular value held at 1 (Miyato et al. 2018), instead of BatchNorm
            for m in [blk[0] for blk in self.blocks] + [self.head]:
                spectral_norm(m)

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        r = self.profile.resolution
        if x.ndim == 4:
            x = x.unsqueeze(1)
        assert x.ndim == 5 and tuple(x.shape[1:]) == (1, r, r, r), (
            f"Discriminator expects voxels (N, {r}, {r}, {r}), got {tuple(x.shape)}"
        )
        return x

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of each hidden block: paper64 gives (N,64,32^3), (N,128,16^3), (N,256,8^3), (N,512,4^3)."""
        x = self._check(x)
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x).flatten()  # (N,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class ImageEncoder(nn.Module):
    """Image -> q(z | y): five conv layers (paper: kernels 11,5,5,5,8; strides 4,2,2,2,1; BN + ReLU between),
    the last giving 2 * z_dim channels at 1x1: the mean and log-variance of z."""

    def __init__(self, profile: Profile) -> None:
        super().__init__()
        self.profile = profile
        layers: list[nn.Module] = []
        c_in, size = 3, profile.image_size
        n = len(profile.e_kernels)
        for i, (k, s, c) in enumerate(zip(profile.e_kernels, profile.e_strides, profile.e_channels)):
            last = i == n - 1
            pad = 0 if last else k // 2
            layers.append(nn.Conv2d(c_in, c, k, s, pad, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(c), nn.ReLU(True)]
            size = (size + 2 * pad - k) // s + 1
            c_in = c
        if size != 1:
            raise ValueError(f"profile {profile.name!r}: encoder ends at {size}x{size}, not 1x1; fix e_kernels")
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_image(image, self.profile, type(self).__name__)
        out = self.net(image).flatten(1)  # (N, 2 * z_dim)
        mean, logvar = out.chunk(2, dim=1)
        return mean, logvar.clamp(-10.0, 10.0)

    def forward_taps(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``forward``'s mean and log-variance, and the output of each conv block (after its ReLU)."""
        _check_image(image, self.profile, type(self).__name__)
        taps, h = [], image
        for layer in self.net:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                taps.append(h)
        mean, logvar = h.flatten(1).chunk(2, dim=1)
        return mean, logvar.clamp(-10.0, 10.0), taps


def _check_image(image: torch.Tensor, profile: Profile, who: str) -> None:
    s = profile.image_size
    assert image.ndim == 4 and tuple(image.shape[1:]) == (3, s, s), (
        f"{who} expects images (N, 3, {s}, {s}), got {tuple(image.shape)}"
    )


class _ResBlock(nn.Module):
    """A basic residual block (He et al. 2016): two 3x3 convs with BatchNorm, a strided 1x1 shortcut when the
    size or width changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.short = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                      if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(h)) + self.short(x), inplace=True)


class ResNetEncoder(nn.Module):
    """Image -> q(z | y) by a small residual CNN (profile ``encoder="resnet"``; not the paper's): a strided 3x3
    stem, four stages of two basic residual blocks (widths ``RESNET_WIDTHS``, each stage halving the size), global
    average pooling, dropout, and a linear layer giving the mean and log-variance of z. About 2.8M weights and
    0.15 GMAC at 128 px (the paper's fast32 encoder: 0.18 GMAC); global pooling makes it indifferent to where
    the object sits in the frame. Same interface as :class:`ImageEncoder`."""

    def __init__(self, profile: Profile) -> None:
        super().__init__()
        self.profile = profile
        w = RESNET_WIDTHS
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, 2, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(True))
        stages, c = [], w[0]
        for width in w:
            stages.append(nn.Sequential(_ResBlock(c, width, 2), _ResBlock(width, width, 1)))
            c = width
        self.stages = nn.ModuleList(stages)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(c, 2 * profile.z_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not getattr(m.weight, "is_meta", False):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for blk in self.modules():  # each residual branch starts as the identity (Goyal et al. 2017)
            if isinstance(blk, _ResBlock) and not getattr(blk.bn2.weight, "is_meta", False):
                nn.init.zeros_(blk.bn2.weight)
        if not getattr(self.head.weight, "is_meta", False):
            nn.init.normal_(self.head.weight, 0.0, 0.01)
            nn.init.zeros_(self.head.bias)
            # the posterior starts narrow (sigma 0.05): through a frozen generator, noise as wide as the prior
            # hides the mean's signal, and the log-variance learns only slowly from the reconstruction
            nn.init.constant_(self.head.bias[profile.z_dim:], RESNET_LOGVAR_INIT)

    def forward_taps(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``forward``'s mean and log-variance, and the output of each stage (4 of them)."""
        _check_image(image, self.profile, type(self).__name__)
        h = self.stem(image)
        taps = []
        for stage in self.stages:
            h = stage(h)
            taps.append(h)
        out = self.head(self.drop(h.mean((2, 3))))  # (N, 2 * z_dim)
        mean, logvar = out.chunk(2, dim=1)
        return mean, logvar.clamp(-10.0, 10.0), taps

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar, _ = self.forward_taps(image)
        return mean, logvar


RESNET_WIDTHS = (32, 64, 128, 256)  # ResNetEncoder's stage widths (stem: the first)
RESNET_LOGVAR_INIT = 2 * math.log(0.05)  # ResNetEncoder's initial log-variance of z
ENCODER_CLASSES: dict[str, type[nn.Module]] = {"paper": ImageEncoder, "resnet": ResNetEncoder}


def build_encoder(profile: Profile) -> nn.Module:
    """The image encoder a profile names (``profile.encoder``: "paper", the default and every checkpoint made
    before the field existed, or "resnet")."""
    return ENCODER_CLASSES[profile.encoder](profile)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mean + sigma * eps: differentiable sampling from q(z | y)."""
    return mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), summed over z and averaged over the batch (>= 0)."""
    return (-0.5 * (1 + logvar - mean.pow(2) - logvar.exp()).sum(dim=1)).mean()


def bce_logits(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))


@torch.no_grad()
def recalibrate_batchnorm(net: nn.Module, inputs: Iterable[torch.Tensor]) -> None:
    """Recompute ``net``'s BatchNorm running statistics as a plain average over ``inputs`` (batches).

    During training the statistics trail moving weights (momentum 0.1) and mix whatever batches passed through
    (a VAE-GAN's G sees prior z and encoder z), so eval-mode outputs can differ from train-mode ones, often
    emptier. Run under the caller's autocast; ``net`` keeps its train/eval mode.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    was_training = net.training
    net.train()
    try:
        for x in inputs:
            net(x)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        net.train(was_training)
