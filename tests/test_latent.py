"""Latent sampling, paths, arithmetic and projection."""

import numpy as np
import pytest
import torch

from gan_core.config import get_profile
from gan_core.errors import BadInputError
from gan_core.latent import (
    along_keyframes, arithmetic, check_z, keyframe_path, lerp, path, project, project_many, sample_z, slerp,
)
from gan_core.models import Generator


def test_sampling_is_seeded():
    p = get_profile("tiny16")
    a, b, c = sample_z(4, p, seed=1), sample_z(4, p, seed=1), sample_z(4, p, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (4, 32)
    u = sample_z(1000, p.replace(z_prior="uniform"), seed=0)
    assert u.min() >= 0 and u.max() < 1


def test_lerp_and_slerp_endpoints_and_norms():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(200).astype(np.float32), rng.standard_normal(200).astype(np.float32)
    for f in (lerp, slerp):
        assert np.allclose(f(a, b, 0.0), a, atol=1e-5) and np.allclose(f(a, b, 1.0), b, atol=1e-5)
    mid_l, mid_s = np.linalg.norm(lerp(a, b, 0.5)), np.linalg.norm(slerp(a, b, 0.5))
    # slerp keeps the norm near the ends' (~sqrt(200)); lerp shrinks it by about 1/sqrt(2)
    assert abs(mid_s - np.linalg.norm(a)) < 0.1 * np.linalg.norm(a)
    assert mid_l < 0.8 * mid_s
    assert np.allclose(slerp(a, a, 0.3), a, atol=1e-5)


def test_path_shapes_and_keyframes():
    a, b, c = np.zeros(5, np.float32), np.ones(5, np.float32), 2 * np.ones(5, np.float32)
    p = path(a, b, 5, "lerp")
    assert p.shape == (5, 5) and np.allclose(p[:, 0], [0, 0.25, 0.5, 0.75, 1])
    k = keyframe_path([a, b, c], 3, "lerp")
    assert np.allclose(k[:, 0], [0, 0.5, 1, 1.5, 2])
    with pytest.raises(BadInputError):
        path(a, b, 1)


def test_arithmetic():
    a, b, c = np.full(3, 3.0), np.full(3, 1.0), np.full(3, 0.5)
    assert np.allclose(arithmetic(a, b, c, prior=None), 2.5)  # the raw sum
    assert np.allclose(arithmetic(a, b, c, (1, 0.5, 2), prior=None), 3.5)
    # by default back on the N(0, 1) shell: (2.5, 2.5, 2.5) has norm 2.5 * sqrt(3); sqrt(3) is the typical norm
    assert np.allclose(arithmetic(a, b, c), 1.0)
    assert np.allclose(arithmetic(a, b, c, (1, 0.5, 2)), 1.0)
    # U[0, 1): about the centre 0.5, to sqrt(z_dim / 12); (0.5, 0.5, 3.5) - 0.5 = (0, 0, 3) -> (0, 0, 0.5)
    assert np.allclose(arithmetic(np.array([1.0, 1, 4]), np.full(3, 1.0), np.full(3, 0.5), prior="uniform"),
                       [0.5, 0.5, 1.0])
    assert np.allclose(arithmetic(a, a, np.zeros(3)), 0.0)  # a - a + 0: no direction to rescale
    with pytest.raises(BadInputError, match="prior"):
        arithmetic(a, b, c, prior="laplace")


def test_rescaled_arithmetic_has_a_samples_norm():
    """The issue's measurement: a - b + c of prior samples is ~1.7x as long as one; rescaled, it is as long."""
    from gan_core.config import get_profile
    from gan_core.latent import prior_norm, sample_z

    z = sample_z(300, get_profile("fast32"), seed=3).numpy().astype(np.float64)
    a, b, c = z[:100], z[100:200], z[200:]
    raw = np.linalg.norm(arithmetic(a, b, c, prior=None), axis=1) / np.linalg.norm(a, axis=1)
    assert 1.6 < raw.mean() < 1.85  # sqrt(3) = 1.73
    r = arithmetic(a, b, c)
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), np.sqrt(200), rtol=1e-5)
    assert abs(np.linalg.norm(a, axis=1).mean() - prior_norm(200)) < 0.3  # what samples have
    d = a - b + c  # the direction is kept
    np.testing.assert_allclose(r / np.linalg.norm(r, axis=1, keepdims=True),
                               d / np.linalg.norm(d, axis=1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize("bad", [np.full(32, np.nan), np.full(32, np.inf), np.zeros(31), np.zeros((2, 2, 32))])
def test_check_z_rejects_bad_vectors(bad):
    with pytest.raises(BadInputError):
        check_z(bad, 32)


def test_project_recovers_a_generated_shape():
    torch.manual_seed(0)
    p = get_profile("tiny16")
    g = Generator(p).eval()
    with torch.no_grad():
        # make the untrained generator's output less uniform so the target has structure
        target = (g(sample_z(1, p, seed=3)) > g(sample_z(1, p, seed=3)).median())[0].numpy()
    z, iou = project(g, target, steps=60, restarts=2, seed=0)
    assert z.shape == (32,) and np.isfinite(z).all()
    with torch.no_grad():
        start_iou = _iou(g(sample_z(1, p, seed=99))[0].numpy() > 0.5, target)
    assert iou > start_iou
    with pytest.raises(BadInputError):
        project(g, np.zeros((5, 6, 7)))


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_keyframe_positions_put_each_key_at_its_t_in_every_mode():
    rng = np.random.default_rng(1)
    keys = [rng.standard_normal(6).astype(np.float32) for _ in range(4)]
    for mode in ("lerp", "slerp", "spline"):
        at = along_keyframes(keys, np.linspace(0, 1, 4), mode)
        np.testing.assert_allclose(at, np.stack(keys), atol=1e-5)
        assert along_keyframes(keys, 0.5, mode).shape == (6,)
    # per segment, lerp and slerp are the two-point path of that segment
    np.testing.assert_allclose(along_keyframes(keys, 0.5, "slerp"), slerp(keys[1], keys[2], 0.5), atol=1e-5)
    # two keys: halfway between their directions, with the mean norm (not lerp's shrunken one)
    a, b = keys[:2]
    mid = along_keyframes([a, b], 0.5, "spline")
    half = a / np.linalg.norm(a) + b / np.linalg.norm(b)
    np.testing.assert_allclose(mid / np.linalg.norm(mid), half / np.linalg.norm(half), atol=1e-5)
    assert np.linalg.norm(mid) == pytest.approx((np.linalg.norm(a) + np.linalg.norm(b)) / 2, rel=1e-5)


def test_spline_turns_smoothly_through_a_key_where_lerp_kinks():
    keys = [np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([1.0, 2.0])]  # a right angle at the middle key
    eps = 1e-3
    for mode, smooth in (("lerp", False), ("spline", True)):
        before = along_keyframes(keys, 0.5, mode) - along_keyframes(keys, 0.5 - eps, mode)
        after = along_keyframes(keys, 0.5 + eps, mode) - along_keyframes(keys, 0.5, mode)
        cos = before @ after / (np.linalg.norm(before) * np.linalg.norm(after))
        assert (cos > 0.99) == smooth, (mode, cos)
    k = keyframe_path(keys, 5, "spline")
    assert k.shape == (9, 2) and np.allclose(k[4], keys[1], atol=1e-5)
    with pytest.raises(BadInputError):
        along_keyframes(keys, 0.5, "cubic")
    with pytest.raises(BadInputError):
        along_keyframes(keys[:1], 0.5)


def _generator_and_targets():
    """An untrained tiny16 generator and two of its shapes, thresholded at their medians to give them structure."""
    torch.manual_seed(0)
    p = get_profile("tiny16")
    g = Generator(p).eval()
    with torch.no_grad():
        out = g(sample_z(2, p, seed=3))
    return g, p, (out > out.flatten(1).median(1).values[:, None, None, None]).numpy()


def test_project_many_matches_project_for_one_target_and_batches_several():
    g, _, targets = _generator_and_targets()
    z1, iou1 = project(g, targets[0], steps=15, restarts=2, seed=0)
    zs, ious = project_many(g, targets[:1], steps=15, restarts=2, seed=0)
    np.testing.assert_allclose(zs[0], z1, atol=1e-5)
    assert ious[0] == pytest.approx(iou1, abs=1e-6)
    zs, ious = project_many(g, targets, steps=15, restarts=2, seed=0)
    assert zs.shape == (2, 32) and ious.shape == (2,) and np.isfinite(zs).all()
    with pytest.raises(BadInputError):
        project_many(g, np.zeros((0, 16, 16, 16)))


def test_project_many_from_given_starts_improves_on_them():
    g, p, targets = _generator_and_targets()
    with torch.no_grad():
        start = sample_z(2, p, seed=8)
        start_iou = [_iou(a, b) for a, b in zip(g(start).numpy() > 0.5, targets)]
    zs, ious = project_many(g, targets, steps=15, restarts=1, init=start.numpy())
    assert np.all(ious > np.array(start_iou))
    _, ious0 = project_many(g, targets, steps=0, restarts=1, init=start.numpy())
    np.testing.assert_allclose(ious0, start_iou, atol=1e-6)  # zero steps: the starts themselves
    with pytest.raises(BadInputError, match="restarts=1"):
        project_many(g, targets, restarts=2, init=start.numpy())
    with pytest.raises(BadInputError, match="one z per target"):
        project_many(g, targets, restarts=1, init=start.numpy()[:1])
