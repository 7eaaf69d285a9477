"""CPU fast paths for the layers that oneDNN, PyTorch's CPU convolution library, runs far below its usual rate:
the generator's first layer (ConvTranspose3d z -> 4^3 from a 1^3 input), its second (ConvTranspose3d on a 4^3
input; paper64's third too, at batch 1), its last (ConvTranspose3d C -> 1) and the discriminator's first
(Conv3d 1 -> C); all but the first have kernel 4, stride 2, padding 1.

* A transposed 3D convolution with one output channel runs at about a fifteenth of the usual rate. It is the
  generator's output layer (a third of the paper64 generator's time at batch 1) and the input gradient of the
  discriminator's first layer. As one matrix product (every input voxel's 64 kernel taps) plus eight shifted
  adds it runs at the usual rate.
* A transposed convolution on a 4^3 input ran at 15 GMAC/s where a 16^3 layer ran at 70 (one thread, Intel
  Xeon): the same matrix product and shifted adds are 2-7x faster at batch 1 and 1.3-1.8x at batch 32. A single
  8^3 input with 256+ channels gains 1.48x; other inputs stay with oneDNN, which is faster there, and so does
  training (gradients).
* The first layer on a 1^3 input is a matrix product; as a convolution it cost a third of a fast32 frame.

The layers keep their nn.ConvTranspose3d / nn.Conv3d parameters, so checkpoints are unchanged; other devices
use the stock kernels.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

_K, _S, _P = 4, 2, 1  # kernel, stride, padding of the stride-2 layers
# DoublingConvTranspose3d's matrix-product path takes inputs up to this side, and single inputs of this side with
# at least this many channels (paper64's 256 -> 128 layer at batch 1: 1.48x faster).
_MAX_MATMUL_SIDE = 4
_WIDE_SIDE, _WIDE_MIN_CHANNELS = 8, 256
_stock_only = False  # set by stock_kernels(): every layer runs PyTorch's own kernels


@contextlib.contextmanager
def stock_kernels() -> Iterator[None]:
    """Run every layer with PyTorch's own kernels inside the block: the custom gradients here are first-order
    only, and a gradient penalty (R1) differentiates D's input gradient again."""
    global _stock_only
    before, _stock_only = _stock_only, True
    try:
        yield
    finally:
        _stock_only = before


def transpose_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """conv_transpose3d(x, weight, bias, stride 2, padding 1) for weight (C, C', 4, 4, 4): x (N, C, R, R, R) ->
    (N, C', 2R, 2R, 2R) in x's dtype (channels_last for C' > 1), summed in float32 or wider.

    Every input voxel's 64 kernel taps are one matrix product; tap k = 2 s + a along each axis (s shift, a output
    parity) puts input voxel i on padded output 2 (i + s) + a, so eight shifted adds (one per s) place them all.
    """
    n, c, r, c_out = x.shape[0], x.shape[1], x.shape[2], weight.shape[1]
    rows = x.permute(0, 2, 3, 4, 1).reshape(-1, c)  # (N R^3, C): a view when x is channels_last
    acc_dtype = torch.promote_types(x.dtype, torch.float32)
    side = 2 * r + 2
    if c_out == 1:  # tap-major: each tap's plane is contiguous, so the adds stream (6x faster for one channel)
        # (sx ax sy ay sz az N i j k)
        taps = (weight.reshape(c, _K**3).t() @ rows.t()).view(2, 2, 2, 2, 2, 2, n, r, r, r)
        acc = torch.zeros(2, 2, 2, n, r + 1, r + 1, r + 1, dtype=acc_dtype, device=x.device)
        for sx in (0, 1):
            for sy in (0, 1):
                for sz in (0, 1):
                    acc[:, :, :, :, sx:sx + r, sy:sy + r, sz:sz + r] += taps[sx, :, sy, :, sz]
        out = acc.permute(3, 4, 0, 5, 1, 6, 2).reshape(n, side, side, side)[:, 1:-1, 1:-1, 1:-1].unsqueeze(1)
    else:  # channels innermost, as the next layer wants them
        w = weight.permute(0, 2, 3, 4, 1).reshape(c, -1)  # (C, kd kh kw C'): a view when weight is channels_last
        taps = (rows @ w).view(n, r, r, r, 2, 2, 2, 2, 2, 2, c_out)  # (N i j k sx ax sy ay sz az C')
        acc = torch.zeros(n, r + 1, r + 1, r + 1, 2, 2, 2, c_out, dtype=acc_dtype, device=x.device)
        for sx in (0, 1):
            for sy in (0, 1):
                for sz in (0, 1):
                    acc[:, sx:sx + r, sy:sy + r, sz:sz + r] += taps[:, :, :, :, sx, :, sy, :, sz]
        out = acc.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(n, side, side, side, c_out)[:, 1:-1, 1:-1, 1:-1]
        out = out.permute(0, 4, 1, 2, 3)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1, 1)
    return out.to(x.dtype)


def _conv_backward(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, transposed: bool,
                   mask: list[bool]) -> tuple[torch.Tensor | None, ...]:
    """The stock (oneDNN) gradients of the layer, for the outputs ``mask`` asks for (input, weight, bias)."""
    return torch.ops.aten.convolution_backward(
        grad, x, weight, [grad.shape[1]], [_S] * 3, [_P] * 3, [1] * 3, transposed, [0] * 3, 1, mask)


class _UpToOne(torch.autograd.Function):
    """Forward by :func:`transpose_conv`; the gradients (a normal convolution) by oneDNN."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # type: ignore[no-untyped-def, override]
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return transpose_conv(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[no-untyped-def, override]
        x, weight = ctx.saved_tensors
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        gx, gw, gb = _conv_backward(grad, x, weight, True, mask)
        return gx, gw, gb if ctx.has_bias else None


class _DownFromOne(torch.autograd.Function):
    """Forward and weight gradient by oneDNN; the input gradient by :func:`transpose_conv`."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # type: ignore[no-untyped-def, override]
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv3d(x, weight, bias, _S, _P)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[no-untyped-def, override]
        x, weight = ctx.saved_tensors
        gx = transpose_conv(grad, weight) if ctx.needs_input_grad[0] else None
        mask = [False, ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        _, gw, gb = _conv_backward(grad, x, weight, False, mask) if mask[1] or mask[2] else (None, None, None)
        return gx, gw, gb if ctx.has_bias else None


def _apply(fn: Callable[..., torch.Tensor], x: torch.Tensor, weight: torch.Tensor,
           bias: torch.Tensor | None) -> torch.Tensor:
    """Run ``fn(x, weight, bias)`` in autocast's dtype when autocast is on (a custom Function or a chain of plain
    ops is not autocast as one layer would be)."""
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    with torch.autocast("cpu", enabled=False):
        return fn(x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype))


class LatentConvTranspose3d(nn.ConvTranspose3d):
    """nn.ConvTranspose3d(in_channels, out_channels, 4, 1, 0, bias=False) on a 1^3 input: the generator's first
    layer, z (N, z_dim, 1, 1, 1) -> (N, C, 4, 4, 4), channels_last."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, _K, 1, 0, bias=False)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.device.type != "cpu" or output_size is not None or x.shape[2:] != (1, 1, 1):
            return super().forward(x, output_size)
        n, c = x.shape[0], self.out_channels
        w = self.weight.permute(0, 2, 3, 4, 1).reshape(self.in_channels, -1)  # a view when channels_last
        y = (x.reshape(n, -1) @ w).view(n, _K, _K, _K, c).permute(0, 4, 1, 2, 3)
        return y if self.bias is None else y + self.bias.view(1, c, 1, 1, 1)


class DoublingConvTranspose3d(nn.ConvTranspose3d):
    """nn.ConvTranspose3d(in_channels, out_channels, 4, 2, 1, bias=False): the generator's middle layers.

    On a CPU, with no gradient wanted, an input of at most 4^3 voxels (the first of these layers), or a single
    8^3 input of 256 channels or more, goes through :func:`transpose_conv`; everything else (larger inputs,
    training) through the stock kernels. Measured per layer, one thread, Intel Xeon: 4^3 inputs 2-7x faster at
    batch 1 and 1.3-1.9x at batch 8-32; 8^3 inputs 1.48x for 256 -> 128 channels at batch 1, 0.92x for 128 -> 64
    and slower at larger batches; 16^3 inputs 2-5x slower."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, _K, _S, _P, bias=False)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        side = x.shape[2] if x.shape[2] == x.shape[3] == x.shape[4] else 0
        small = 0 < side <= _MAX_MATMUL_SIDE or (
            x.shape[0] == 1 and side == _WIDE_SIDE and x.shape[1] >= _WIDE_MIN_CHANNELS)
        wants_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if x.device.type != "cpu" or output_size is not None or not small or wants_grad:
            return super().forward(x, output_size)
        return _apply(transpose_conv, x, self.weight, self.bias)


class OneOutConvTranspose3d(nn.ConvTranspose3d):
    """nn.ConvTranspose3d(in_channels, 1, 4, 2, 1): the generator's output layer."""

    def __init__(self, in_channels: int) -> None:
        super().__init__(in_channels, 1, _K, _S, _P)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.device.type != "cpu" or output_size is not None or _stock_only:
            return super().forward(x, output_size)
        return _apply(_UpToOne.apply, x, self.weight, self.bias)


class OneInConv3d(nn.Conv3d):
    """nn.Conv3d(1, out_channels, 4, 2, 1, bias=False): the discriminator's input layer."""

    def __init__(self, out_channels: int) -> None:
        super().__init__(1, out_channels, _K, _S, _P, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or _stock_only:
            return super().forward(x)
        return _apply(_DownFromOne.apply, x, self.weight, self.bias)
