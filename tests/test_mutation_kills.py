"""Values against closed forms and hand-made examples, written for the mutants that survived the tests before
(scripts/mutation.sh, benchmarks/RESULTS.md): each test names what a surviving mutant changed and checks the
value a correct implementation must give, worked out here independently of the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan_core import latent
from gan_core.config import get_profile
from gan_core.errors import BadInputError

pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread: two spin against each other when busy


# -- latent operations ------------------------------------------------------------------------------------------
def _unit(i: int, n: int = 6) -> np.ndarray:
    e = np.zeros(n, np.float32)
    e[i] = 1.0
    return e


def test_the_default_mode_of_every_path_function_is_slerp():
    a, b = 2 * _unit(0), 2 * _unit(1)  # 90 degrees apart, norm 2: slerp(1/4) = 2 (cos 22.5deg, sin 22.5deg)
    want = 2 * (np.cos(np.pi / 8) * _unit(0) + np.sin(np.pi / 8) * _unit(1))
    np.testing.assert_allclose(latent.interpolate(a, b, 0.25), want, atol=1e-6)
    np.testing.assert_allclose(latent.path(a, b, 5)[1], want, atol=1e-6)  # t = 0, 1/4, ...
    np.testing.assert_allclose(latent.keyframe_path([a, b], 5)[1], want, atol=1e-6)
    np.testing.assert_allclose(latent.along_keyframes([a, b], 0.25), want, atol=1e-6)
    assert latent.slerp(a, b, 0.25).dtype == np.float32 and latent.lerp(a, b, 0.25).dtype == np.float32  # scalar t


def test_lerp_mode_reaches_every_segment_of_a_keyframe_path():
    a, b, c = 2 * _unit(0), 2 * _unit(1), 2 * _unit(2)
    # lerp at the middle of a segment is the chord's midpoint, norm sqrt(2) (slerp's would keep norm 2)
    np.testing.assert_allclose(latent.along_keyframes([a, b, c], 0.25, "lerp"), (a + b) / 2, atol=1e-6)
    np.testing.assert_allclose(latent.along_keyframes([a, b, c], 0.75, "lerp"), (b + c) / 2, atol=1e-6)
    kp = latent.keyframe_path([a, b, c], 3, "lerp")  # 3 steps per segment, the shared key once: 5 rows
    np.testing.assert_allclose(kp, [a, (a + b) / 2, b, (b + c) / 2, c], atol=1e-6)
    assert kp.dtype == np.float32 and latent.along_keyframes([a, b, c], [0.1, 0.6]).dtype == np.float32


def test_antiparallel_ends_fall_back_to_the_straight_line():
    a = np.array([1.0, 2.0, -2.0], np.float32)  # |a| = 3
    # a and -a: the great circle is undefined, slerp takes the chord, whose point at 1/4 is a / 2
    np.testing.assert_allclose(latent.slerp(a, -a, 0.25), a / 2, atol=1e-6)
    np.testing.assert_allclose(latent.slerp(a, -2 * a, 0.5), -a / 2, atol=1e-6)


def test_keyframe_positions_outside_0_1_stay_at_the_ends():
    keys = [2 * _unit(0), 2 * _unit(1), 2 * _unit(2)]
    for mode in ("slerp", "lerp", "spline"):
        np.testing.assert_allclose(latent.along_keyframes(keys, -0.5, mode), keys[0], atol=1e-6)
        np.testing.assert_allclose(latent.along_keyframes(keys, 1.5, mode), keys[-1], atol=1e-6)


def test_a_spline_through_keys_of_any_norm_by_hand():
    # two keys: the reflected ends make the Catmull-Rom segment straight, on the directions and on the norms:
    # normalise((1 - t) a / |a| + t b / |b|) * ((1 - t) |a| + t |b|)
    a, b = 0.5 * _unit(0), 0.25 * _unit(1)  # norms below 1
    t = 0.25
    d = (1 - t) * _unit(0) + t * _unit(1)
    want = d / np.linalg.norm(d) * ((1 - t) * 0.5 + t * 0.25)
    np.testing.assert_allclose(latent.along_keyframes([a, b], t, "spline"), want, atol=1e-6)
    # a zero key has no direction: the path is t b
    np.testing.assert_allclose(latent.along_keyframes([np.zeros(6, np.float32), b], t, "spline"), t * b, atol=1e-6)
    # opposite directions cancel at the middle: the zero vector (not NaN)
    np.testing.assert_allclose(latent.along_keyframes([a, -a], 0.5, "spline"), np.zeros(6), atol=1e-6)


def test_a_spline_keyframe_path_is_catmull_rom_midpoints():
    # three keys, 3 steps per segment: t = 0, 1/4 (middle of segment 0), 1/2 (key 2), 3/4, 1. A Catmull-Rom
    # segment's midpoint is (-p0 + 9 p1 + 9 p2 - p3) / 16; the first segment's p0 is reflected: 2 p1 - p2
    keys = [2 * _unit(0), 2 * _unit(1), 2 * _unit(2)]
    kp = latent.keyframe_path(keys, 3, "spline")
    assert kp.shape == (5, 6)
    dirs = [k / 2 for k in keys]
    p0, p1, p2, p3 = 2 * dirs[0] - dirs[1], dirs[0], dirs[1], dirs[2]
    mid = (-p0 + 9 * p1 + 9 * p2 - p3) / 16
    np.testing.assert_allclose(kp[1], mid / np.linalg.norm(mid) * 2.0, atol=1e-6)  # every norm 2
    np.testing.assert_allclose(kp[[0, 2, 4]], keys, atol=1e-6)
    assert latent.keyframe_path(keys[:2], 2, "spline").shape == (2, 6)  # the smallest path: 2 keys, 2 steps
    assert latent.keyframe_path(keys[:2], 2).shape == (2, 6)


def test_arithmetic_on_short_vectors_and_its_zero_difference():
    a, b, c = 0.1 * _unit(0), 0.2 * _unit(1), 0.3 * _unit(2)
    raw = a - b + c  # |raw| = sqrt(0.14) < 1: still brought to the N(0, 1) shell, sqrt(6) long
    got = latent.arithmetic(a, b, c)
    np.testing.assert_allclose(got, raw / np.linalg.norm(raw) * math.sqrt(6), atol=1e-6)
    assert got.dtype == np.float32 and latent.arithmetic(a, b, c, prior=None).dtype == np.float32
    np.testing.assert_array_equal(latent.arithmetic(a, a, 0 * a), np.zeros(6))  # stays the centre
    h = np.full(6, 0.5, np.float32)  # U[0, 1)'s centre: h - h + h is no difference from it either
    np.testing.assert_array_equal(latent.arithmetic(h, h, h, prior="uniform"), h)


def test_the_priors_default_is_the_normal_one():
    assert latent.prior_norm(16) == 4.0 and latent.prior_centre() == 0.0
    assert latent.prior_norm(24, "uniform") == math.sqrt(2.0) and latent.prior_centre("uniform") == 0.5


def test_sample_z_edges_none_zero_and_the_seed_range():
    p = get_profile("tiny16")
    assert tuple(latent.sample_z(0, p, seed=0).shape) == (0, p.z_dim)  # zero samples is a valid request
    assert tuple(latent.sample_z(2, p).shape) == (2, p.z_dim)  # no seed: a fresh one
    for seed in (-(2**63), 2**64 - 1):  # torch's whole seed range, both ends included
        assert tuple(latent.sample_z(1, p, seed=seed).shape) == (1, p.z_dim)
    with pytest.raises(BadInputError):
        latent.sample_z(1, p, seed=2**64)


def test_sample_z_of_a_uniform_prior_is_seeded_and_in_the_unit_interval():
    import dataclasses

    p = dataclasses.replace(get_profile("tiny16"), z_prior="uniform")
    z1, z2 = latent.sample_z(200, p, seed=5), latent.sample_z(200, p, seed=5)
    assert torch.equal(z1, z2) and tuple(z1.shape) == (200, p.z_dim)
    assert float(z1.min()) >= 0.0 and float(z1.max()) < 1.0
    assert float(z1.mean()) == pytest.approx(0.5, abs=0.02)  # 200 * z_dim draws of U[0, 1)
    want = torch.rand(200, p.z_dim, generator=torch.Generator().manual_seed(5))  # torch's own seeded stream
    assert torch.equal(z1, want)


# -- resampling ----------------------------------------------------------------------------------------------------
def test_upsampling_one_corner_voxel_by_hand():
    from gan_core.data.resample import resample

    g = np.zeros((2, 2, 2), np.uint8)
    g[0, 0, 0] = 1
    # trilinear, cell centres (align_corners False), edges clamped: along each axis the new voxels 0..3 take
    # 1, 3/4, 1/4, 0 of the old voxel 0. A new voxel is kept where the product is >= 1/2: every index in {0, 1}
    # except (1, 1, 1), whose 27/64 is below it
    want = np.zeros((4, 4, 4), np.uint8)
    want[:2, :2, :2] = 1
    want[1, 1, 1] = 0
    got = resample(g, 4)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.uint8


def test_downsampling_keeps_a_block_at_a_quarter_full_and_drops_it_below():
    from gan_core.data.resample import resample

    g = np.zeros((3, 4, 4, 4), np.uint8)  # a leading batch axis, three grids
    g[0, 0, 0, :2] = 1  # 2 of the first 2^3 block's 8 voxels: exactly a quarter
    g[1, 0, 0, 0] = 1  # 1 of 8: below it
    g[2, 2:, 2:, 2:] = 1  # a full block
    got = resample(g, 2)
    assert got.shape == (3, 2, 2, 2) and got.dtype == np.uint8
    assert got[0].tolist() == [[[1, 0], [0, 0]], [[0, 0], [0, 0]]]
    assert got[1].sum() == 0
    assert got[2].tolist() == [[[0, 0], [0, 0]], [[0, 0], [0, 1]]]


def test_resampling_to_the_same_size_binarises():
    from gan_core.data.resample import resample

    g = np.array([0, 1, 2, 255, 0, 0, 3, 0], np.uint8).reshape(2, 2, 2)
    got = resample(g, 2)
    np.testing.assert_array_equal(got, (g > 0).astype(np.uint8))
    assert got.dtype == np.uint8


@pytest.mark.parametrize("shape, to, match", [
    ((8,), 4, "must end in"), ((4, 4, 5), 4, "must end in"), ((16, 16, 16), 24, "not an integer factor"),
    ((16, 16, 16), 12, "not an integer factor")])
def test_resampling_refuses_what_it_cannot_do(shape, to, match):
    from gan_core.data.resample import resample

    with pytest.raises(BadInputError, match=match):
        resample(np.zeros(shape, np.uint8), to)


# -- the VAE objective -------------------------------------------------------------------------------------------
def test_holdout_split_partitions_and_holds_out_round_fraction_n():
    from gan_core.vae_objective import holdout_split

    train, held = holdout_split(10, 0.3, seed=1)
    assert len(held) == 3 and len(train) == 7  # round(0.3 * 10)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(10))
    assert list(train) == sorted(train) and list(held) == sorted(held)
    assert len(holdout_split(10, 0.01, seed=1)[1]) == 1  # at least one when a fraction is asked for
    assert len(holdout_split(10, 0.0, seed=1)[1]) == 0
    splits = {tuple(holdout_split(10, 0.3, seed=s)[1]) for s in range(6)}
    assert len(splits) > 1 and holdout_split(10, 0.3, seed=1)[1].tolist() == held.tolist()  # seeded


def test_spread_takes_evenly_spaced_entries():
    from gan_core.vae_objective import spread

    pos = np.arange(10) * 2
    assert spread(pos, 4).tolist() == [0, 6, 12, 18]  # indices 0, 3, 6, 9
    assert spread(pos, 10).tolist() == pos.tolist() and spread(pos[:3], 5).tolist() == [0, 2, 4]


def test_reconstruction_losses_by_hand():
    from gan_core.vae_objective import recon_bce, recon_loss

    pred = torch.tensor([[0.5, 1.0], [0.0, 0.25]]).reshape(2, 1, 1, 2)
    target = torch.tensor([[1.0, 1.0], [0.0, 1.0]]).reshape(2, 1, 1, 2)
    # squared errors per voxel (0.25, 0), (0, 0.5625), summed per shape, averaged over the two
    assert float(recon_loss(pred, target)) == pytest.approx((0.25 + 0.5625) / 2)
    logits = torch.tensor([[2.0, -1.0], [0.5, -3.0]]).reshape(2, 1, 1, 2)

    def bce(x, y, w=1.0):
        s = 1 / (1 + math.exp(-x))
        return -(w * y * math.log(s) + (1 - y) * math.log(1 - s))

    ys = [[1.0, 1.0], [0.0, 1.0]]
    xs = [[2.0, -1.0], [0.5, -3.0]]
    for w in (1.0, 3.0):  # pos_weight weighs only the occupied voxels' term
        want = np.mean([sum(bce(x, y, w) for x, y in zip(xr, yr)) for xr, yr in zip(xs, ys)])
        assert float(recon_bce(logits, target, pos_weight=w)) == pytest.approx(want, rel=1e-6)


def test_generator_logits_are_the_generators_output_before_its_sigmoid():
    from gan_core.models import Generator
    from gan_core.vae_objective import generator_logits

    p = get_profile("tiny16")
    torch.manual_seed(0)
    g = Generator(p).eval()
    z = torch.randn(3, p.z_dim)
    with torch.no_grad():
        logits = generator_logits(g, z)
        assert logits.shape == (3, 16, 16, 16)
        torch.testing.assert_close(torch.sigmoid(logits), g(z), atol=1e-6, rtol=1e-5)


def test_batch_iou_by_hand():
    from gan_core.vae_objective import batch_iou

    prob = torch.tensor([[0.9, 0.6, 0.2, 0.5], [0.1, 0.2, 0.3, 0.4]]).reshape(2, 1, 2, 2)
    target = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).reshape(2, 1, 2, 2)
    # shape 1: predicted {0, 1} (0.5 is not above the level), target {0, 2}: IoU 1/3; shape 2: both empty, 1
    assert batch_iou(prob, target) == pytest.approx((1 / 3 + 1) / 2)


# -- mesh readers: each format written by hand, read back exactly -------------------------------------------
# Vertices whose three coordinates all differ (a swapped or dropped axis shows), a quad and two triangles.
VERTS = np.array([[0.0, 10.0, 100.0], [1.5, 12.0, 103.0], [3.0, 14.5, 106.0], [4.5, 16.0, 109.5], [6.0, 18.0, 112.0]])
POLYS = [[0, 1, 2, 3], [1, 4, 2], [3, 2, 4]]
FANNED = [[0, 1, 2], [0, 2, 3], [1, 4, 2], [3, 2, 4]]  # the quad split as (p0, p1, p2), (p0, p2, p3)


def _read(tmp_path, name: str, data: bytes | str):
    from gan_core.data.mesh_readers import read_mesh

    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return read_mesh(p)


def _vlines(fmt: str = "{} {} {}") -> list[str]:
    return [fmt.format(*map(repr, v)) for v in VERTS.tolist()]


def test_off_variants_read_exactly(tmp_path):
    faces = [f"{len(p)} " + " ".join(map(str, p)) for p in POLYS]
    for name, text in (
        ("std.off", "\n".join(["OFF", "5 3 0", *_vlines(), *faces])),
        ("glued.off", "\n".join(["OFF5 3 0", *_vlines(), *faces])),  # ModelNet's header quirk
        ("colours.off", "\n".join(["COFF", "# a comment", "5 3 0", *_vlines("{} {} {} 255 0 0"), *faces])),
    ):
        v, f = _read(tmp_path, name, text + "\n")
        np.testing.assert_array_equal(v, VERTS)
        assert f.tolist() == FANNED, name
    tris = [f"3 {p[0]} {p[1]} {p[2]}" for p in FANNED]  # all triangles: the fast path
    v, f = _read(tmp_path, "tri.off", "\n".join(["OFF", "5 4 0", *_vlines(), *tris]) + "\n")
    np.testing.assert_array_equal(v, VERTS)
    assert f.tolist() == FANNED and f.dtype == np.int64 and v.dtype == np.float64


def test_obj_absolute_and_relative_indices_read_exactly(tmp_path):
    vl = ["v " + s for s in _vlines()]
    absolute = ["f " + " ".join(f"{i + 1}/{i + 1}/1" for i in POLYS[0]), "f " + " ".join(f"{i + 1}//2" for i in POLYS[1]),
                "f " + " ".join(str(i + 1) for i in POLYS[2])]
    v, f = _read(tmp_path, "a.obj", "\n".join(["# hand-made", *vl, "vn 0 0 1", *absolute]) + "\n")
    np.testing.assert_array_equal(v, VERTS)
    assert f.tolist() == FANNED
    # relative: -1 is the latest vertex so far; faces placed between vertex lines count from there
    text = "\n".join([*vl[:4], "f -4 -3 -2 -1", vl[4], "f -4 -1 -3", "f 4 3 -1"]) + "\n"
    v, f = _read(tmp_path, "r.obj", text)
    np.testing.assert_array_equal(v, VERTS)
    assert f.tolist() == FANNED


def test_stl_ascii_and_binary_read_exactly(tmp_path):
    import struct

    tris = VERTS[np.array(FANNED)]  # (4, 3, 3)
    ascii = ["solid hand"] + [ln for t in tris for ln in (
        "facet normal 0 0 1", "outer loop", *(f"vertex {x!r} {y!r} {z!r}" for x, y, z in t.tolist()),
        "endloop", "endfacet")] + ["endsolid hand"]
    binary = b"x" * 80 + struct.pack("<I", len(tris)) + b"".join(
        struct.pack("<3f", 0, 0, 1) + struct.pack("<9f", *t.ravel()) + b"\0\0" for t in tris)
    for name, data in (("a.stl", "\n".join(ascii) + "\n"), ("b.stl", binary)):
        v, f = _read(tmp_path, name, data)
        np.testing.assert_array_equal(v, tris.reshape(-1, 3))  # exact: every coordinate is a float32
        assert f.tolist() == np.arange(12).reshape(4, 3).tolist(), name


def _ply_header(fmt: str, n_faces: int, count: str = "uchar", index: str = "int") -> bytes:
    return ("\n".join(["ply", f"format {fmt} 1.0", "comment hand-made", "element vertex 5", "property float x",
                       "property float y", "property float z", "property uchar red",
                       f"element face {n_faces}", f"property list {count} {index} vertex_indices", "end_header"])
            + "\n").encode()


def test_ply_ascii_and_binary_read_exactly(tmp_path):
    import struct

    body = "\n".join([f"{x!r} {y!r} {z!r} 7" for x, y, z in VERTS.tolist()]
                     + [f"{len(p)} " + " ".join(map(str, p)) for p in POLYS]) + "\n"
    v, f = _read(tmp_path, "a.ply", _ply_header("ascii", 3) + body.encode())
    np.testing.assert_array_equal(v, VERTS)
    assert f.tolist() == FANNED
    for fmt, e in (("binary_little_endian", "<"), ("binary_big_endian", ">")):
        verts = b"".join(struct.pack(e + "3fB", *row, 7) for row in VERTS.tolist())
        mixed = b"".join(struct.pack(e + "B" + "i" * len(p), len(p), *p) for p in POLYS)  # row by row
        v, f = _read(tmp_path, f"m{e == '<'}.ply", _ply_header(fmt, 3) + verts + mixed)
        np.testing.assert_array_equal(v, VERTS)
        assert f.tolist() == FANNED, fmt
        uniform = b"".join(struct.pack(e + "H3I", 3, *p) for p in FANNED)  # every face a triangle: one frombuffer
        v, f = _read(tmp_path, f"u{e == '<'}.ply", _ply_header(fmt, 4, "ushort", "uint") + verts + uniform)
        np.testing.assert_array_equal(v, VERTS)
        assert f.tolist() == FANNED, fmt
    quads = b"".join(struct.pack("<B4i", 4, *p) for p in ([0, 1, 2, 3], [1, 4, 3, 2]))  # uniform quads, fanned
    le_verts = b"".join(struct.pack("<3fB", *row, 7) for row in VERTS.tolist())
    v, f = _read(tmp_path, "q.ply", _ply_header("binary_little_endian", 2) + le_verts + quads)
    assert f.tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 3], [1, 3, 2]]


# -- voxelising a mesh -----------------------------------------------------------------------------------------
def _box_mesh(sx: float, sy: float, sz: float, lid: bool = True):
    v = np.array([(x, y, z) for x in (0, sx) for y in (0, sy) for z in (0, sz)], float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4)] + ([(1, 5, 7, 3)] if lid else [])
    return v, np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])


def test_normalize_vertices_by_hand():
    from gan_core.data.voxelize import normalize_vertices

    v = np.array([[0.0, 0.0, 0.0], [4.0, 2.0, 1.0], [1.0, 1.0, 0.5]])
    # longest side 4 -> 8 voxels: x 2 per unit; every axis centred on 4
    np.testing.assert_allclose(normalize_vertices(v, 8), [[0, 2, 3], [8, 6, 5], [2, 4, 4]])


@pytest.mark.parametrize("lid", [True, False], ids=["closed box", "box without its lid"])
def test_a_box_voxelises_to_the_voxels_it_spans(lid):
    from gan_core.data.voxelize import voxelize_mesh

    # 1 x 7/16 x 3/16 at 8^3: x spans [0, 8], y [2.25, 5.75], z [3.25, 4.75] -> voxels 0-7, 2-5, 3-4 (the
    # faces cut voxels 2, 5, 3 and 4, which count, as binvox counts surface voxels); without a lid the axis rays'
    # majority still fills it
    g = voxelize_mesh(*_box_mesh(1.0, 7 / 16, 3 / 16, lid), 8)
    want = np.zeros((8, 8, 8), np.uint8)
    want[:, 2:6, 3:5] = 1
    np.testing.assert_array_equal(g, want)


# -- meshing a grid ------------------------------------------------------------------------------------------------
def _box_grid() -> np.ndarray:
    g = np.zeros((8, 8, 8), np.uint8)
    g[1:7, 2:5, 3:4] = 1  # 6 x 3 x 1 voxels
    return g


@pytest.mark.parametrize("level, out", [(0.5, 0.5), (0.3, 0.7)])
def test_voxels_to_mesh_bounds_by_hand(level, out):
    from gan_core.mesh import voxels_to_mesh

    # the surface crosses each occupied-empty pair where g - level changes sign, (1 - level) of the way out
    # from the occupied voxel's centre; world = (index - (R - 1) / 2) / R
    m = voxels_to_mesh(_box_grid(), level=level)
    lo, hi = np.array([1, 2, 3]) - out, np.array([6, 4, 3]) + out
    np.testing.assert_allclose(np.asarray(m.bounds).reshape(3, 2), np.c_[lo - 3.5, hi - 3.5] / 8, atol=1e-6)
    tri = np.asarray(m.points)[m.regular_faces]  # outward faces: positive signed volume (divergence theorem)
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert 0 < vol < np.prod(hi - lo) / 8**3  # inside its bounding box


def test_voxels_to_mesh_spacing_and_probabilities():
    from gan_core.mesh import voxels_to_mesh

    m = voxels_to_mesh(_box_grid(), spacing=(1.0, 2.0, 3.0))  # one voxel per axis: 1, 2 and 3 units
    np.testing.assert_allclose(np.asarray(m.bounds).reshape(3, 2), [[-3, 3], [-4, 2], [-3, 0]], atol=1e-6)
    # probabilities 0.8 at level 0.4: the crossing is half way again ((0.8 - 0.4) / 0.8)
    m = voxels_to_mesh(_box_grid().astype(np.float32) * 0.8, level=0.4)
    np.testing.assert_allclose(np.asarray(m.bounds).reshape(3, 2) * 8 + 3.5, [[0.5, 6.5], [1.5, 4.5], [2.5, 3.5]],
                               atol=1e-5)
    speck = _box_grid()
    speck[7, 7, 7] = 1  # a separate voxel: dropped by default, kept on request
    assert voxels_to_mesh(speck).bounds[1] == pytest.approx(voxels_to_mesh(_box_grid()).bounds[1])
    assert voxels_to_mesh(speck, largest_component=False).bounds[1] == pytest.approx(0.5)


def test_voxels_to_cubes_by_hand():
    from gan_core.mesh import voxels_to_cubes

    c = voxels_to_cubes(_box_grid())
    assert c.n_cells == 2 * (6 * 3 + 6 * 1 + 3 * 1)  # exposed faces only
    np.testing.assert_allclose(np.asarray(c.bounds).reshape(3, 2) * 8 + 3.5, [[0.5, 6.5], [1.5, 4.5], [2.5, 3.5]],
                               atol=1e-5)
    one = np.zeros((4, 4, 4), np.uint8)
    one[0, 1, 2] = 1
    c = voxels_to_cubes(one)
    pts = np.asarray(c.points)
    centre = (np.array([0, 1, 2]) - 1.5) / 4
    assert c.n_cells == 6 and len(pts) == 24
    for quad in c.regular_faces:  # outward: each face's normal points away from the voxel's centre
        p = pts[quad]
        assert np.cross(p[1] - p[0], p[2] - p[0]) @ (p.mean(0) - centre) > 0
    np.testing.assert_allclose(np.abs(pts - centre), 1 / 8, atol=1e-6)  # every corner half a voxel out
    c = voxels_to_cubes(_box_grid(), spacing=2.0)
    np.testing.assert_allclose(np.asarray(c.bounds).reshape(3, 2), [[-6, 6], [-4, 2], [-2, 0]], atol=1e-5)


def test_largest_component_by_connectivity():
    from gan_core.mesh import largest_component

    g = np.zeros((5, 5, 5), bool)
    g[0, 0, 0:3] = True  # a row of three
    g[1, 0, 3] = True  # touches its end along an edge only
    g[2, 1, 4] = True  # touches that one at a corner only
    g[4, 4, 0:2] = True  # two apart
    assert largest_component(g, 6).sum() == 3  # faces: the row alone
    assert largest_component(g, 18).sum() == 4  # edges join the second voxel
    assert largest_component(g, 26).sum() == 5  # corners join the third
    assert largest_component(g).sum() == 5 and not largest_component(g)[4, 4, 0]
    assert not largest_component(np.zeros((3, 3, 3))).any()


def test_scaled_to_makes_the_longest_side_that_long():
    from gan_core.mesh import scaled_to, voxels_to_cubes

    m = scaled_to(voxels_to_cubes(_box_grid()), 120.0)
    ext = np.ptp(np.asarray(m.points), axis=0)
    np.testing.assert_allclose(ext, [120.0, 60.0, 20.0], rtol=1e-6)  # 6 : 3 : 1 voxels


# -- generation metrics ------------------------------------------------------------------------------------------
def test_iou_distances_by_hand():
    from gan_core.evaluate import iou_distances

    a = np.zeros((2, 2, 2, 2), np.float32)
    a[0, 0] = 0.9  # 4 voxels (the x = 0 half), as probabilities
    a[0, 1, 0, 0] = 0.4  # below 0.5: empty
    b = np.zeros((3, 2, 2, 2), np.uint8)
    b[0, 0, 0] = 1  # 2 voxels, inside a[0]
    b[1, 1] = 1  # the other half
    # b[2] empty; a[1] empty
    want = [[1 - 2 / 4, 1 - 0 / 8, 1.0], [1.0, 1.0, 0.0]]  # two empty grids are the same shape
    for chunk in (1, 2, 256):
        np.testing.assert_allclose(iou_distances(a, b, chunk=chunk), want, atol=1e-7)


def test_coverage_and_mmd_and_1nna_by_hand():
    from gan_core.evaluate import coverage_mmd, one_nna

    d_sr = np.array([[0.1, 0.5, 0.9], [0.2, 0.4, 0.8]])  # both samples nearest reference 0
    cov, mmd = coverage_mmd(d_sr)
    assert cov == pytest.approx(1 / 3) and mmd == pytest.approx((0.1 + 0.4 + 0.8) / 3)
    d_ss = np.array([[0.0, 0.3], [0.3, 0.0]])
    d_rr = np.array([[0.0, 0.6, 0.7], [0.6, 0.0, 0.2], [0.7, 0.2, 0.0]])
    # sample 0: own 0.3 vs other 0.1 -> wrong; sample 1: 0.3 vs 0.2 -> wrong; reference 0: own 0.6 vs 0.1 ->
    # wrong; reference 1: 0.2 vs 0.4 -> right; reference 2: 0.2 vs 0.8 -> right: 2 of 5
    assert one_nna(d_ss, d_rr, d_sr) == pytest.approx(2 / 5)
    tie = np.full((2, 2), 0.5)
    assert one_nna(tie, tie, tie) == 0.5  # the classifier cannot tell: half right each


def test_generation_metrics_compare_at_the_smaller_resolution_and_count_occupancy():
    from gan_core.evaluate import generation_metrics

    s = np.zeros((3, 4, 4, 4), np.uint8)
    s[1, :2, :2, :2] = 1  # one 2^3 block: one voxel at 2^3
    s[2] = 1  # full
    r = np.zeros((2, 2, 2, 2), np.uint8)
    r[0, 0, 0, 0] = 1
    r[1] = 1
    m = generation_metrics(s, r)
    assert m["resolution"] == 2 and (m["n_samples"], m["n_reference"]) == (3, 2)
    # at 2^3 the samples are: empty, the reference's first shape, the reference's second: perfect matches
    assert m["iou"]["cov"] == 1.0 and m["iou"]["mmd"] == 0.0
    assert m["empty_rate"] == pytest.approx(1 / 3) and m["full_rate"] == pytest.approx(1 / 3)
    assert m["mean_occupancy_samples"] == pytest.approx((0 + 1 / 8 + 1) / 3)
    assert m["mean_occupancy_reference"] == pytest.approx((1 / 8 + 1) / 2)
    assert generation_metrics(s, r, resolution=4)["resolution"] == 4


def test_surface_points_of_one_voxel_lie_on_its_octahedron():
    from gan_core.evaluate import surface_points

    g = np.zeros((4, 4, 4), np.uint8)
    g[1, 2, 3] = 1
    # marching cubes of a lone voxel: the octahedron through the points half a voxel out along each axis from
    # its centre, (i + 0.5) / R in unit-cube coordinates; its 8 faces are equal, so sampling by area puts ~1/8 of
    # the points in each octant
    p = surface_points(g, 4000, np.random.default_rng(0))
    c = (np.array([1, 2, 3]) + 0.5) / 4
    assert p.shape == (4000, 3) and p.dtype == np.float32
    np.testing.assert_allclose(np.abs(p - c).sum(axis=1), 0.5 / 4, atol=1e-6)
    octant = ((p - c) > 0) @ np.array([1, 2, 4])
    assert np.bincount(octant, minlength=8).min() > 4000 / 8 * 0.8
    assert surface_points(np.zeros((4, 4, 4)), 10, np.random.default_rng(0)).shape == (0, 3)


def test_chamfer_distances_by_hand():
    from gan_core.evaluate import CHAMFER_MAX, chamfer_distances

    x = np.array([[0.0, 0.0, 0.0]])
    y = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    empty = np.zeros((0, 3))
    # CD = mean over x of min |x - y|^2 + mean over y of min |y - x|^2 = 1 + (1 + 4) / 2
    d = chamfer_distances([x, empty], [y, empty])
    np.testing.assert_allclose(d, [[3.5, CHAMFER_MAX], [CHAMFER_MAX, 0.0]])
    sets = [x, y, empty]
    same = chamfer_distances(sets, sets)
    np.testing.assert_allclose(same, [[0, 3.5, CHAMFER_MAX], [3.5, 0, CHAMFER_MAX], [CHAMFER_MAX, CHAMFER_MAX, 0]])
    ticks = []
    chamfer_distances(sets, sets, ticks.append)
    assert sum(ticks) == 3  # the upper triangle: 3 pairs


# -- shape metrics ------------------------------------------------------------------------------------------------
def test_frechet_distance_of_gaussians_by_hand():
    from gan_core.shape_metrics import frechet_distance

    # per axis independent: FD = |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2 (np.cov: N - 1 in the variance)
    a = np.array([[0.0, 1.0], [2.0, 1.0], [1.0, 4.0], [1.0, 4.0]])
    b = np.array([[3.0, 0.0], [7.0, 0.0], [5.0, 2.0], [5.0, 2.0]])
    va = np.var(a, axis=0, ddof=1)
    vb = np.var(b, axis=0, ddof=1)
    assert np.cov(a, rowvar=False)[0, 1] == 0 and np.cov(b, rowvar=False)[0, 1] == 0  # diagonal by construction
    want = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.sum((np.sqrt(va) - np.sqrt(vb)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    one = np.array([[0.0], [2.0]])  # one feature: variance 2
    assert frechet_distance(one, one + 3) == pytest.approx(9.0)


def test_fragmented_and_tiny_rates_by_hand():
    from gan_core.shape_metrics import class_histogram, fragmented_rate, tiny_rate, tiny_threshold

    g = np.zeros((3, 16, 16, 16), np.uint8)
    g[0, 0:10, 0, 0] = 1
    g[0, 15, 15, 15] = 1  # largest part 10 of 11 = 0.909: not fragmented
    g[1, 0:8, 0, 0] = 1
    g[1, 14:16, 15, 15] = 1  # 8 of 10: fragmented
    # g[2] empty: not counted
    assert fragmented_rate(g) == pytest.approx(1 / 2)
    assert fragmented_rate(np.zeros((2, 4, 4, 4))) == 0.0
    assert tiny_threshold(32) == 150 and tiny_threshold(64) == 1200 and tiny_threshold(16) == 18.75
    t = np.zeros((3, 16, 16, 16), np.uint8)
    t[0].flat[:18] = 1  # under 18.75
    t[1].flat[:19] = 1
    assert tiny_rate(t) == pytest.approx(2 / 3)  # 18 voxels and the empty grid
    assert tiny_rate(t.astype(np.float32) * 0.6) == pytest.approx(2 / 3)  # probabilities above 0.5 count
    assert class_histogram(np.array([0, 2, 2, 1]), 4) == [0.25, 0.25, 0.5, 0.0]
    with pytest.raises(BadInputError):
        class_histogram(np.array([0, 4]), 4)
