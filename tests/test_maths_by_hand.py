"""Values checked against closed forms and hand-made asymmetric examples, where a green run must mean the
maths is right (issue 24's planted bugs: swapped GAN labels, slerp with t^2, an OFF reader swapping axes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core.data.importers import load_voxels
from gan_core.latent import slerp
from gan_core.train import TrainConfig, Trainer
from tests.core_data import boxes_npz


def test_slerp_at_a_quarter_is_the_closed_form():
    # two unit vectors 90 degrees apart: slerp(t) = cos(t pi/2) a + sin(t pi/2) b, at t = 0.25 the 22.5-degree point
    a = np.zeros(8, np.float32)
    b = np.zeros(8, np.float32)
    a[0], b[1] = 1.0, 1.0
    got = slerp(a, b, 0.25)
    want = np.zeros(8)
    want[0], want[1] = np.cos(np.pi / 8), np.sin(np.pi / 8)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # unequal norms (3 and 1), 60 degrees apart, Shoemake's weights sin(0.75 * 60deg) / sin 60deg = 0.816497 on a
    # and sin(15deg) / sin 60deg = 0.298858 on b, worked out by hand: (2.598919, 0.258819)
    a2, b2 = np.array([3.0, 0.0], np.float32), np.array([0.5, np.sqrt(3) / 2], np.float32)
    np.testing.assert_allclose(slerp(a2, b2, 0.25), [2.598919, 0.258819], atol=1e-5)


@pytest.fixture
def trainer(tmp_path):
    data = boxes_npz(tmp_path / "boxes.npz")
    return Trainer(TrainConfig(data=str(data), out=str(tmp_path / "run"), profile="tiny16", epochs=10, batch_size=8,
                               precision="fp32", channels_last=False, label_smoothing=0.1, instance_noise=0.2))


def test_the_d_loss_targets_real_as_one_minus_smoothing_and_fake_as_zero(trainer):
    d_real, d_fake = torch.tensor([1.5, -0.5]), torch.tensor([0.25, -2.0])
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731

    def bce(x, target):  # by hand, per element
        return -(target * np.log(sig(x)) + (1 - target) * np.log(1 - sig(x)))

    want = np.mean([bce(1.5, 0.9), bce(-0.5, 0.9)]) + np.mean([bce(0.25, 0.0), bce(-2.0, 0.0)])
    assert float(trainer._d_loss(d_real, d_fake)) == pytest.approx(want, rel=1e-6)
    # swapping the labels would give a different number (the planted bug this catches)
    swapped = np.mean([bce(1.5, 0.0), bce(-0.5, 0.0)]) + np.mean([bce(0.25, 0.9), bce(-2.0, 0.9)])
    assert abs(want - swapped) > 0.5
    # G's loss is non-saturating: -log sigmoid(D(G(z)))
    assert float(trainer._g_loss(d_fake)) == pytest.approx(np.mean([bce(0.25, 1.0), bce(-2.0, 1.0)]), rel=1e-6)


def test_instance_noise_is_annealed_linearly_and_has_that_std(trainer):
    assert trainer._noise_std() == pytest.approx(0.2)
    trainer.epoch = 4  # of 10
    assert trainer._noise_std() == pytest.approx(0.2 * 0.6)
    x = torch.zeros(4, 1, 16, 16, 16)
    noisy = trainer._d_input(x, trainer._noise_std())
    assert float(noisy.std()) == pytest.approx(0.12, rel=0.03)  # 16384 draws: std within ~1%
    trainer.epoch = 10
    assert trainer._noise_std() == 0.0


def _write_off(path, vertices, faces) -> None:
    lines = ["OFF", f"{len(vertices)} {len(faces)} 0"] + [" ".join(map(str, v)) for v in vertices]
    lines += [f"{len(f)} " + " ".join(map(str, f)) for f in faces]
    path.write_text("\n".join(lines) + "\n")


def test_an_off_box_keeps_its_axes(tmp_path):
    """A box 1 long in x, 0.5 in y, 0.25 in z (axis 2 is up): every axis has its own extent in the grid, so a
    reader that swapped two axes would move the long side."""
    sx, sy, sz = 1.0, 0.5, 0.25
    v = [(x, y, z) for x in (0, sx) for y in (0, sy) for z in (0, sz)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    _write_off(tmp_path / "box.off", v, faces)
    grid = load_voxels(tmp_path / "box.off", 32)
    extent = [int(np.any(grid, axis=tuple(j for j in range(3) if j != i)).sum()) for i in range(3)]
    assert extent[0] > extent[1] > extent[2]  # x longest, z (up) shortest
    assert extent[1] / extent[0] == pytest.approx(0.5, abs=0.1) and extent[2] / extent[0] == pytest.approx(0.25, abs=0.1)
