"""Shapes and layer lists of the paper's networks for each profile."""

import pytest
import torch
from torch import nn

from gan_core.config import PROFILES, Profile, get_profile
from gan_core.errors import BadInputError
from gan_core.models import Discriminator, Generator, ImageEncoder, inference_generator, kl_divergence, reparameterize


def _layers(module: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


def test_paper64_generator_is_the_papers():
    p = get_profile("paper64")
    g = Generator(p)
    convs = _layers(g, nn.ConvTranspose3d)
    assert [(c.in_channels, c.out_channels) for c in convs] == [(200, 512), (512, 256), (256, 128), (128, 64), (64, 1)]
    assert all(c.kernel_size == (4, 4, 4) for c in convs)
    assert [c.stride[0] for c in convs] == [1, 2, 2, 2, 2]
    assert len(_layers(g, nn.BatchNorm3d)) == 4 and len(_layers(g, nn.ReLU)) == 4
    assert isinstance(list(g.modules())[-1], nn.Sigmoid)
    out = g(torch.randn(2, 200))
    assert out.shape == (2, 64, 64, 64) and out.min() >= 0 and out.max() <= 1


def test_paper64_discriminator_mirrors_generator():
    p = get_profile("paper64")
    d = Discriminator(p)
    convs = _layers(d, nn.Conv3d)
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    assert all(c.kernel_size == (4, 4, 4) for c in convs)
    assert all(m.negative_slope == 0.2 for m in _layers(d, nn.LeakyReLU))
    x = torch.rand(2, 64, 64, 64)
    prob = d(x)
    assert prob.shape == (2,) and ((prob >= 0) & (prob <= 1)).all()
    acts = d.activations(x)
    assert [tuple(a.shape[1:]) for a in acts] == [(64, 32, 32, 32), (128, 16, 16, 16), (256, 8, 8, 8), (512, 4, 4, 4)]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_builds_consistent_networks(name):
    p = get_profile(name)
    g, d, e = Generator(p).eval(), Discriminator(p).eval(), ImageEncoder(p).eval()
    with torch.no_grad():
        x = g(torch.randn(3, p.z_dim))
        assert x.shape == (3, p.resolution, p.resolution, p.resolution)
        assert d(x).shape == (3,)
        mean, logvar = e(torch.rand(3, 3, p.image_size, p.image_size))
    assert mean.shape == logvar.shape == (3, p.z_dim)


def test_paper_encoder_layers():
    e = ImageEncoder(get_profile("paper64"))
    convs = _layers(e, nn.Conv2d)
    assert [c.kernel_size[0] for c in convs] == [11, 5, 5, 5, 8]
    assert [c.stride[0] for c in convs] == [4, 2, 2, 2, 1]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 400]


def test_wrong_input_shapes_fail_with_clear_messages():
    p = get_profile("tiny16")
    with pytest.raises(AssertionError, match=r"z of shape \(N, 32\)"):
        Generator(p)(torch.randn(2, 31))
    with pytest.raises(AssertionError, match=r"voxels \(N, 16, 16, 16\)"):
        Discriminator(p)(torch.rand(2, 8, 8, 8))


def test_bad_profiles_are_refused():
    with pytest.raises(BadInputError, match="resolution"):
        Profile(name="x", resolution=48, g_channels=(8,), d_channels=(8,))
    with pytest.raises(BadInputError, match="channel entries"):
        Profile(name="x", resolution=32, g_channels=(8, 8), d_channels=(8, 8, 8))
    with pytest.raises(BadInputError, match="unknown profile"):
        get_profile("nope")


def test_kl_is_zero_at_prior_and_positive_elsewhere():
    zeros = torch.zeros(4, 10)
    assert kl_divergence(zeros, zeros).item() == pytest.approx(0.0, abs=1e-7)
    # KL(N(1, 1) || N(0, 1)) = 0.5 per dimension
    assert kl_divergence(torch.ones(4, 10), zeros).item() == pytest.approx(5.0, rel=1e-5)
    assert kl_divergence(zeros, torch.full((4, 10), 2.0)).item() > 0
    torch.manual_seed(0)
    z = reparameterize(torch.full((20000, 1), 3.0), torch.full((20000, 1), 0.0))
    assert z.mean().item() == pytest.approx(3.0, abs=0.05) and z.std().item() == pytest.approx(1.0, abs=0.05)


def test_recalibrate_batchnorm_averages_the_given_batches_and_keeps_the_mode():
    from torch import nn

    from gan_core.models import recalibrate_batchnorm

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).eval()
    net[1].running_mean.fill_(100.0)
    batches = [torch.randn(8, 4) + 1.0, torch.randn(8, 4) - 2.0]
    recalibrate_batchnorm(net, iter(batches))
    with torch.no_grad():
        h = torch.cat([net[0](b) for b in batches])
        want_var = torch.stack([net[0](b).var(0, unbiased=True) for b in batches]).mean(0)
    torch.testing.assert_close(net[1].running_mean, h.mean(0))
    torch.testing.assert_close(net[1].running_var, want_var)
    assert not net.training and net[1].momentum == 0.1


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_inference_generator_folds_batchnorm_and_matches_eval_mode(dtype, tol):
    p = get_profile("tiny16")
    torch.manual_seed(0)
    g = Generator(p)
    g.train()
    for _ in range(3):  # running statistics away from their initial 0 / 1
        g(torch.randn(8, p.z_dim))
    fast = inference_generator(g.eval(), dtype, torch.channels_last_3d)
    assert not _layers(fast, nn.BatchNorm3d) and len(_layers(g, nn.BatchNorm3d)) == 2
    assert all(q.dtype == dtype and not q.requires_grad for q in fast.parameters())
    z = torch.randn(4, p.z_dim)
    with torch.no_grad():
        want, got = g(z), fast(z.to(dtype))
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), want, rtol=tol, atol=tol)
    assert g.training is False and all(q.dtype == torch.float32 for q in g.parameters())  # the original is untouched
