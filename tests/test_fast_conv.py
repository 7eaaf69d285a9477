"""The CPU fast paths compute what the stock layers compute, gradients included."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_core.bench import PlainDiscriminator, plain_generator
from gan_core.config import get_profile
from gan_core.fast_conv import (DoublingConvTranspose3d, LatentConvTranspose3d, OneInConv3d, OneOutConvTranspose3d,
                                transpose_conv)
from gan_core.models import Discriminator, Generator

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("n,c,r", [(1, 1, 1), (2, 5, 3), (3, 8, 4)])
@pytest.mark.parametrize("c_out", [1, 6])
@pytest.mark.parametrize("channels_last", [False, True])
def test_transpose_conv_matches_conv_transpose3d(n, c, r, c_out, channels_last):
    g = torch.Generator().manual_seed(n * 100 + c * 10 + r)
    x = torch.randn(n, c, r, r, r, generator=g, dtype=torch.float64)
    w = torch.randn(c, c_out, 4, 4, 4, generator=g, dtype=torch.float64)
    b = torch.randn(c_out, generator=g, dtype=torch.float64)
    if channels_last:
        x, w = (t.contiguous(memory_format=torch.channels_last_3d) for t in (x, w))
    want = F.conv_transpose3d(x, w, b, stride=2, padding=1)
    got = transpose_conv(x, w, b)
    assert got.shape == want.shape == (n, c_out, 2 * r, 2 * r, 2 * r)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("n,c,r", [(3, 12, 4), (3, 12, 8), (1, 256, 8), (2, 256, 8)])
@pytest.mark.parametrize("grad", [False, True])
def test_doubling_layer_matches_the_stock_layer_with_and_without_gradients(n, c, r, grad):
    """Small inputs at inference take the matrix-product path; larger inputs and training the stock one."""
    torch.manual_seed(r)
    ours, stock = DoublingConvTranspose3d(c, 5), nn.ConvTranspose3d(c, 5, 4, 2, 1, bias=False)
    stock.load_state_dict(ours.state_dict())
    ours.to(memory_format=torch.channels_last_3d)
    x = torch.randn(n, c, r, r, r).contiguous(memory_format=torch.channels_last_3d)
    with torch.set_grad_enabled(grad):
        y = ours(x)
    torch.testing.assert_close(y, stock(x), rtol=1e-4, atol=1e-5)
    assert y.requires_grad == grad
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert ours(x).dtype == stock(x).dtype == torch.bfloat16


@pytest.mark.parametrize("layer,shape", [
    (OneOutConvTranspose3d(3), (2, 3, 3, 3, 3)), (OneInConv3d(4), (2, 1, 6, 6, 6)), (LatentConvTranspose3d(5, 3), (2, 5, 1, 1, 1)),
])
def test_gradients_match_finite_differences(layer, shape):
    layer = layer.double()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    params = [p for p in layer.parameters()]
    assert torch.autograd.gradcheck(lambda x, *ps: layer(x), (x, *params))


@pytest.mark.parametrize("ours,stock,shape", [
    (OneOutConvTranspose3d(16), nn.ConvTranspose3d(16, 1, 4, 2, 1), (4, 16, 8, 8, 8)),
    (OneInConv3d(16), nn.Conv3d(1, 16, 4, 2, 1, bias=False), (4, 1, 16, 16, 16)),
    (LatentConvTranspose3d(20, 16), nn.ConvTranspose3d(20, 16, 4, 1, 0, bias=False), (4, 20, 1, 1, 1)),
])
@pytest.mark.parametrize("bf16", [False, True])
def test_layers_match_stock_layers_in_fp32_and_under_bf16_autocast(ours, stock, shape, bf16):
    stock.load_state_dict(ours.state_dict())
    ours.to(memory_format=torch.channels_last_3d)  # as the trainer and the runtime hold them
    x = torch.randn(*shape).contiguous(memory_format=torch.channels_last_3d)
    results = []
    for layer in (ours, stock):
        layer.zero_grad()
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = layer(xi)
        (y.float() * torch.linspace(-1, 1, y.numel()).view(y.shape)).sum().backward()
        results.append((y, xi.grad, layer.weight.grad))
    (y1, gx1, gw1), (y2, gx2, gw2) = results
    assert y1.dtype == y2.dtype == (torch.bfloat16 if bf16 else torch.float32)
    assert gw1.dtype == torch.float32  # the parameter's own dtype, as autocast gives
    tol = dict(rtol=2e-2, atol=2e-2) if bf16 else dict(rtol=1e-4, atol=1e-5)
    for a, b in ((y1, y2), (gx1, gx2), (gw1, gw2)):
        torch.testing.assert_close(a.float(), b.float(), **tol)


def test_networks_keep_the_stock_parameter_names_and_outputs():
    """Checkpoints load into stock layers and give the same shapes: the fast path is an implementation detail."""
    p = get_profile("tiny16")
    torch.manual_seed(0)
    g, d = Generator(p), Discriminator(p)
    plain_g, plain_d = plain_generator(p), PlainDiscriminator(p)
    plain_g.load_state_dict({k.removeprefix("net."): v for k, v in g.state_dict().items()})  # strict: same names
    plain_d.load_state_dict(d.state_dict())
    z = torch.randn(3, p.z_dim)
    fake = g(z)
    torch.testing.assert_close(fake, plain_g(z.view(3, p.z_dim, 1, 1, 1))[:, 0])
    torch.testing.assert_close(d.logits(fake.detach()), plain_d(fake.detach().unsqueeze(1)))
