"""Latent operations: properties for any finite input (hypothesis), and a clear BadInputError for NaN, Inf,
wrong lengths and wrong types, in the library, in runtime.generate and in the CLI's --a/--b files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gan_core.config import get_profile
from gan_core.errors import BadInputError
from gan_core.latent import arithmetic, check_z, interpolate, keyframe_path, lerp, path, project, sample_z, slerp

P = get_profile("tiny16")
FAST = settings(max_examples=60, deadline=None)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def z_pair(draw, dim=st.integers(1, 64)):
    n = draw(dim)
    vec = hnp.arrays(np.float32, n, elements=finite)
    return draw(vec), draw(vec)


@FAST
@given(z_pair(), st.floats(0, 1))
def test_lerp_endpoints_and_segment(ab, t):
    a, b = ab
    assert np.allclose(lerp(a, b, 0.0), a, atol=1e-3) and np.allclose(lerp(a, b, 1.0), b, atol=1e-3)
    z = lerp(a, b, t)
    assert z.shape == a.shape and z.dtype == np.float32
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    assert np.all(z >= lo - 1e-3 * (1 + np.abs(lo))) and np.all(z <= hi + 1e-3 * (1 + np.abs(hi)))


@FAST
@given(z_pair(), st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_slerp_endpoints_and_norm(ab, ts):
    a, b = ab
    scale = 1 + max(np.abs(a).max(), np.abs(b).max())
    assert np.allclose(slerp(a, b, 0.0), a, atol=1e-3 * scale)
    assert np.allclose(slerp(a, b, 1.0), b, atol=1e-3 * scale)
    zs = slerp(a, b, np.array(ts))
    assert zs.shape == (len(ts), len(a)) and zs.dtype == np.float32 and np.isfinite(zs).all()


@FAST
@given(z_pair(st.integers(2, 64)))
def test_slerp_keeps_equal_norms(ab):
    a, b = ab
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-2 or nb < 1e-2:
        return
    b = b * (na / nb)  # same norm: the arc never leaves the sphere (unless they are (anti)parallel: lerp)
    cos = float(np.dot(a, b) / (na * na))
    if abs(cos) > 0.999:
        return
    mid = slerp(a, b, 0.5)
    assert np.isclose(np.linalg.norm(mid), na, rtol=1e-3)


@FAST
@given(z_pair(), z_pair(), st.tuples(finite, finite, finite))
def test_arithmetic_is_linear(ab, cd, w):
    (a, b), (c, _) = ab, cd
    if len(c) != len(a):
        c = np.resize(c, a.shape)
    got = arithmetic(a, b, c, w, prior=None).astype(np.float64)
    want = w[0] * a.astype(np.float64) - w[1] * b + w[2] * c
    assert np.allclose(got, want, rtol=1e-4, atol=1e-2)
    # linear in the operands: (a + a) - (b + b) + (c + c) == 2 (a - b + c)
    assert np.allclose(arithmetic(2 * a, 2 * b, 2 * c, prior=None), 2 * arithmetic(a, b, c, prior=None),
                       rtol=1e-5, atol=1e-2)
    # rescaled: the prior's norm whatever the operands' scale, so scaling them changes nothing
    n = np.linalg.norm(want)
    if n > 1e-3 * max(1.0, np.abs(want).max()):
        assert np.isclose(np.linalg.norm(arithmetic(a, b, c, w)), np.sqrt(len(a)), rtol=1e-4)
        assert np.allclose(arithmetic(2 * a, 2 * b, 2 * c, w), arithmetic(a, b, c, w), rtol=1e-3, atol=1e-3)


@FAST
@given(st.integers(1, 40), st.integers(2, 12), st.sampled_from(["lerp", "slerp"]))
def test_paths_start_and_end_on_the_keys(dim, steps, mode):
    rng = np.random.default_rng(dim * steps)
    a, b, c = (rng.standard_normal(dim).astype(np.float32) for _ in range(3))
    p = path(a, b, steps, mode)
    assert p.shape == (steps, dim) and np.allclose(p[0], a, atol=1e-4) and np.allclose(p[-1], b, atol=1e-4)
    k = keyframe_path([a, b, c], steps, mode)
    assert len(k) == 2 * steps - 1 and np.allclose(k[steps - 1], b, atol=1e-4)


@FAST
@given(hnp.arrays(hnp.floating_dtypes() | hnp.integer_dtypes(), hnp.array_shapes(min_dims=0, max_dims=3, max_side=40)))
def test_check_z_accepts_exactly_finite_n_by_zdim(arr):
    ok_shape = arr.ndim in (1, 2) and arr.shape[-1] == P.z_dim
    with np.errstate(over="ignore"):
        finite_vals = bool(np.isfinite(arr.astype(np.float32)).all())
    try:
        z = check_z(arr, P.z_dim)
    except BadInputError as e:
        assert "\n" not in str(e)
        assert not (ok_shape and finite_vals)
    else:
        assert ok_shape and finite_vals and z.dtype == np.float32 and z.shape == (arr.size // P.z_dim, P.z_dim)


# -- bad inputs --------------------------------------------------------------------------------------------
NAN = np.full(8, np.nan, np.float32)
ONE = np.ones(8, np.float32)
BAD_CALLS = {
    "lerp length": lambda: lerp(ONE, np.ones(7), 0.5),
    "slerp length": lambda: slerp(ONE, np.ones(9), 0.5),
    "interpolate nan": lambda: interpolate(NAN, ONE, 0.5),
    "slerp nan": lambda: slerp(ONE, NAN, 0.5),
    "slerp inf": lambda: slerp(ONE * np.inf, ONE, 0.5),
    "lerp t nan": lambda: lerp(ONE, -ONE, float("nan")),
    "slerp t inf": lambda: slerp(ONE, -ONE, np.array([0.0, np.inf])),
    "lerp strings": lambda: lerp(np.array(["a"] * 8), ONE, 0.5),
    "lerp scalar": lambda: lerp(np.float32(1), np.float32(2), 0.5),
    "slerp batch": lambda: slerp(np.ones((2, 8)), np.ones((2, 8)), 0.5),
    "path nan": lambda: path(ONE, NAN, 5),
    "keyframes nan": lambda: keyframe_path([ONE, ONE, NAN], 3),
    "arithmetic length": lambda: arithmetic(ONE, ONE, np.ones(3)),
    "arithmetic inf": lambda: arithmetic(ONE, ONE * np.inf, ONE),
    "arithmetic weights nan": lambda: arithmetic(ONE, ONE, ONE, (1.0, float("nan"), 1.0)),
    "arithmetic 2 weights": lambda: arithmetic(ONE, ONE, ONE, (1.0, 1.0)),
    "sample_z huge seed": lambda: sample_z(1, P, seed=10**30),
    "mode": lambda: interpolate(ONE, ONE, 0.5, "cubic"),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_latent_inputs_are_bad_input_errors(name):
    with pytest.raises(BadInputError) as info:
        BAD_CALLS[name]()
    assert "\n" not in str(info.value)


def test_project_refuses_a_nan_target():
    from gan_core.models import Generator

    target = np.zeros((16, 16, 16), np.float32)
    target[3, 3, 3] = np.nan
    with pytest.raises(BadInputError, match="NaN"):
        project(Generator(P), target, steps=1, restarts=1)


@pytest.fixture(scope="module")
def model():
    from gan_core.runtime import load_model

    return load_model(profile="tiny16", device="cpu", precision="fp32")


@pytest.mark.parametrize("z", [
    np.full(32, np.nan), np.full((2, 32), np.inf), np.zeros(31), np.zeros((2, 33)), np.zeros((1, 1, 32)),
    np.array(["x"] * 32), np.full(32, 1e300), np.array([None] * 32), np.zeros(32, bool), 3.0,
], ids=["nan", "inf", "short", "long", "3d", "str", "f64-overflow", "object", "bool", "scalar"])
def test_generate_refuses_bad_z(model, z):
    with pytest.raises(BadInputError) as info:
        model.generate(z)
    assert "\n" not in str(info.value)


def test_generate_accepts_a_list_and_an_empty_batch(model):
    assert model.generate([0.0] * 32).shape == (1, 16, 16, 16)
    assert model.generate(np.zeros((0, 32))).shape == (0, 16, 16, 16)
