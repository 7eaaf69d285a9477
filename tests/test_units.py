"""What D's units respond to (gan_core.units, gan3d units): the top shapes against a hand computation of the
layers, the heat map against a hand-made case and finite differences, the surface colours, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_core.checkpoint import save_checkpoint
from gan_core.config import get_profile
from gan_core.errors import BadInputError
from gan_core.models import Discriminator, Generator
from gan_core.runtime import load_model
from gan_core.units import (
    check_unit, heat_mesh, layer_infos, surface_heat, top_shapes, unit_heatmaps, unit_responses,
)
from tests.cli_run import last_json, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    """A tiny16 model (fp32, CPU) whose BatchNorms hold made-up running statistics, so eval mode matters."""
    torch.manual_seed(3)
    m = load_model(profile="tiny16", device="cpu", precision="fp32")
    g = torch.Generator().manual_seed(4)
    for block in m.discriminator.blocks:
        bn = block[1]
        c = bn.num_features
        bn.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
        bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
        bn.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
        bn.bias.data.copy_(torch.randn(c, generator=g) * 0.1)
    return m


def by_hand(model, vox: np.ndarray) -> list[np.ndarray]:
    """Each block's output by the formulas (conv k4 s2 p1, BatchNorm with running statistics, LeakyReLU 0.2),
    maximised over space: [(N, C_l)]. Written from the paper, not through Discriminator.activations."""
    x = torch.from_numpy(vox.astype(np.float32))[:, None].double()
    out = []
    with torch.no_grad():
        for block in model.discriminator.blocks:
            conv, bn = block[0], block[1]
            y = F.conv3d(x, conv.weight.double(), stride=2, padding=1)
            shape = (1, -1, 1, 1, 1)
            y = (y - bn.running_mean.double().view(shape)) / torch.sqrt(bn.running_var.double().view(shape) + bn.eps)
            y = y * bn.weight.double().view(shape) + bn.bias.double().view(shape)
            x = torch.where(y > 0, y, 0.2 * y)
            out.append(x.amax(dim=(2, 3, 4)).numpy())
    return out


def test_layers_of_each_profile():
    m = load_model(profile="fast32", device="cpu", precision="fp32")
    assert [(i.index, i.units, i.size, i.receptive_field) for i in layer_infos(m)] == [
        (0, 64, 16, 4), (1, 128, 8, 10), (2, 256, 4, 22)]


def test_top_k_matches_the_hand_computation(model, synthetic_set):
    vox = np.asarray(synthetic_set[0])
    hand = by_hand(model, vox)
    resp = unit_responses(model, vox, batch_size=4)  # several batches
    assert sorted(resp.maxima) == [0, 1] and len(resp) == len(vox)
    for layer in (0, 1):
        np.testing.assert_allclose(resp.maxima[layer], hand[layer], rtol=1e-4, atol=1e-5)
        for unit in (0, 7, hand[layer].shape[1] - 1):
            want = np.argsort(-hand[layer][:, unit], kind="stable")[:4]
            top = top_shapes(model, vox, layer, unit, k=4, batch_size=5)
            assert top.indices.tolist() == want.tolist()
            np.testing.assert_allclose(top.scores, hand[layer][want, unit], rtol=1e-4, atol=1e-5)
            assert (np.diff(top.scores) <= 0).all()


def test_copies_of_a_shape_are_skipped_unless_asked_for(model, synthetic_set):
    vox = np.asarray(synthetic_set[0])
    best = int(np.argmax(by_hand(model, vox)[1][:, 3]))
    with_copies = np.concatenate([vox, vox[best][None], vox[best][None]])  # rows 15 and 16 copy the best shape
    keep = top_shapes(model, with_copies, 1, 3, k=4, distinct=False)
    assert sorted(keep.indices[:3].tolist()) == sorted([best, 15, 16])
    skip = top_shapes(model, with_copies, 1, 3, k=4)
    assert skip.indices[0] == best and not {15, 16} & set(skip.indices.tolist())
    assert skip.indices.tolist() == top_shapes(model, vox, 1, 3, k=4).indices.tolist()  # as if no copies


def test_out_of_range_layers_and_units_are_one_clear_error(model, synthetic_set):
    with pytest.raises(BadInputError, match=r"layer 2 is out of range: .* has layers 0-1"):
        check_unit(model, 2)
    with pytest.raises(BadInputError, match="layer -1 is out of range"):
        top_shapes(model, synthetic_set[0], -1, 0)
    with pytest.raises(BadInputError, match="unit 32 is out of range: layer 1 has units 0-31"):
        unit_heatmaps(model, synthetic_set[0][:1], 1, 32)
    with pytest.raises(BadInputError, match="unit 16 is out of range: layer 0 has units 0-15"):
        unit_responses(model, synthetic_set[0]).top(0, 16)


def test_heat_map_of_a_hand_made_unit():
    """Unit 0 of layer 0 made to sum its 4^3 window (kernel of ones, BatchNorm the identity): on a 4^3 block
    that exactly fills one window, the response is 64 there and the gradient is 1 on the block, 0 elsewhere."""
    torch.manual_seed(0)
    m = load_model(profile="tiny16", device="cpu", precision="fp32")
    conv, bn = m.discriminator.blocks[0][0], m.discriminator.blocks[0][1]
    with torch.no_grad():
        conv.weight[0] = 1.0
        bn.running_mean[0], bn.running_var[0], bn.weight[0], bn.bias[0] = 0.0, 1.0 - bn.eps, 1.0, 0.0
    grid = np.zeros((16, 16, 16), np.uint8)
    grid[3:7, 3:7, 9:13] = 1  # output position (2, 2, 5) reads input 3..6, 3..6, 9..12
    assert unit_responses(m, grid).maxima[0][0, 0] == pytest.approx(64.0, rel=1e-5)
    heat = unit_heatmaps(m, grid, 0, 0)
    assert heat.shape == (1, 16, 16, 16) and heat.dtype == np.float32
    np.testing.assert_allclose(heat[0], grid.astype(np.float32), atol=1e-6)


def test_heat_map_matches_finite_differences(model, synthetic_set):
    vox = np.asarray(synthetic_set[0][[1, 7]]).astype(np.float32)
    layer, unit = 1, 5
    heat = unit_heatmaps(model, vox, layer, unit)
    d = model.discriminator

    def response(g: np.ndarray) -> float:
        with torch.no_grad():
            return float(d.activations(torch.from_numpy(g[None].astype(np.float32)))[layer][0, unit].amax())

    rng = np.random.default_rng(0)
    for n in range(len(vox)):
        flat = np.abs(heat[n]).ravel()
        picks = [int(flat.argmax()), int(np.argsort(flat)[-20])] + list(rng.choice(np.flatnonzero(flat), 2))
        for p in picks:
            i = np.unravel_index(p, heat[n].shape)
            eps = 1e-3
            up, down = vox[n].copy(), vox[n].copy()
            up[i] += eps
            down[i] -= eps
            fd = (response(up) - response(down)) / (2 * eps)
            assert heat[n][i] == pytest.approx(fd, rel=2e-2, abs=2e-5)


def test_surface_heat_and_mesh_colours():
    grid = np.zeros((16, 16, 16), np.uint8)
    grid[2:14, 4:12, 4:12] = 1
    heat = np.zeros(grid.shape, np.float32)
    heat[9:14] = 1.0  # the +x end drives the unit
    heat[2:7] = -3.0  # the -x end holds it back: not shown as heat
    heat[0] = 50.0  # outside the shape: ignored
    s = surface_heat(grid, heat)
    assert s.shape == grid.shape and s.min() >= 0 and s.max() == pytest.approx(1.0)
    assert s[13, 8, 8] == pytest.approx(1.0) and s[2, 8, 8] == 0 and s[15, 8, 8] == pytest.approx(1.0)
    mesh = heat_mesh(grid, heat)
    h, x = np.asarray(mesh.point_data["heat"]), np.asarray(mesh.points)[:, 0]
    assert h.shape == (mesh.n_points,) and 0 <= h.min() and h.max() <= 1
    assert h[x > 0.2].min() > 0.9 and h[x < -0.1].max() < 0.01  # a Gaussian's tail
    assert surface_heat(np.zeros((8, 8, 8)), np.ones((8, 8, 8))).max() == 0  # nothing to paint


# -- gan3d units -------------------------------------------------------------------------------------------------
@pytest.fixture
def ckpt(tmp_path):
    p = get_profile("tiny16")
    torch.manual_seed(1)
    return save_checkpoint(tmp_path / "a.pt", profile=p,
                           models={"generator": Generator(p), "discriminator": Discriminator(p)})


def test_cli_json_matches_the_library_and_draws_the_png(ckpt, synthetic_npz, tmp_path, capsys):
    from PIL import Image

    png = tmp_path / "out" / "u.png"
    rc, out, err = run_cli(capsys, "units", "--checkpoint", ckpt, "--device", "cpu", "--precision", "fp32",
                           "--layer", 1, "--unit", 4, "--data", synthetic_npz, "--top", 3, "--batch-size", 4,
                           "--png", png, "--json")
    assert rc == 0, err
    got = last_json(out)
    assert (got["layer"], got["unit"], got["units_in_layer"], got["n"]) == (1, 4, 32, 15)
    m = load_model(ckpt, device="cpu", precision="fp32")
    with np.load(synthetic_npz) as f:
        vox, labels, classes = f["voxels"], f["labels"], [str(c) for c in f["classes"]]
    want = top_shapes(m, vox, 1, 4, k=3)
    assert [r["index"] for r in got["top"]] == want.indices.tolist() == [r["row"] for r in got["top"]]
    assert [r["rank"] for r in got["top"]] == [1, 2, 3]
    np.testing.assert_allclose([r["score"] for r in got["top"]], want.scores, rtol=1e-5)
    assert [r["class"] for r in got["top"]] == [classes[labels[i]] for i in want.indices]
    assert "rank   index     row  class" in out and got["png"] == str(png)
    with Image.open(png) as im:
        assert im.size == (3 * 240, 240)


def test_cli_list(ckpt, capsys):
    rc, out, err = run_cli(capsys, "units", "--list", "--checkpoint", ckpt, "--device", "cpu", "--json")
    assert rc == 0, err
    assert last_json(out)["layers"] == [{"layer": 0, "units": 16, "size": 8, "receptive_field": 4},
                                        {"layer": 1, "units": 32, "size": 4, "receptive_field": 10}]
    assert "layer  units" in out


@pytest.mark.parametrize("args, line", [
    (["--layer", 2, "--unit", 0], "BadInputError: layer 2 is out of range: a's discriminator has layers 0-1 "
                                  "(0 is nearest the input)"),
    (["--layer", 0, "--unit", 16], "BadInputError: unit 16 is out of range: layer 0 has units 0-15"),
    (["--layer", 0], "BadInputError: --unit needed (or --list to see the layers)"),
    (["--layer", 0, "--unit", 0, "--top", 0], "BadInputError: --top must be >= 1, got 0"),
    (["--layer", 0, "--unit", 0, "--top", 16], "BadInputError: --top 16 exceeds the 15 shapes of synthetic16.npz"),
    (["--layer", 0, "--unit", 0, "--png", "{tmp}/u.jpg"], "BadInputError: --png must end in .png, got u.jpg"),
    (["--layer", 0, "--unit", 0, "--data", "{tmp}/none.npz"], "BadFileError: --data {tmp}/none.npz: no such file"),
])
def test_cli_errors_are_one_line(ckpt, synthetic_npz, tmp_path, capsys, args, line):
    argv = [str(a).format(tmp=tmp_path) for a in args]
    if "--data" not in argv:
        argv += ["--data", str(synthetic_npz)]
    rc, out, err = run_cli(capsys, "units", "--checkpoint", ckpt, "--device", "cpu", *argv)
    assert rc == 1 and err == line.format(tmp=tmp_path) + "\n" and out == ""
