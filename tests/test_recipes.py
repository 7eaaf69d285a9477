"""The modern recipes: hinge and R1 losses against hand computations, the shift augmentation on a hand-made grid,
spectrally normalised D, and every named recipe training end to end."""

import numpy as np
import pytest
import torch

from gan_core.augment import random_shift
from gan_core.config import RECIPES, get_profile
from gan_core.models import Discriminator
from gan_core.train import Trainer
from tests.core_data import boxes_npz, gan_config


@pytest.fixture
def data(tmp_path):
    return boxes_npz(tmp_path / "boxes.npz")


def _trainer(data, out, **kw):
    return Trainer(gan_config(data, out, **{"epochs": 1, **kw}))


def test_hinge_losses_match_a_hand_computation(data, tmp_path):
    tr = _trainer(data, tmp_path / "run", recipe="hinge")
    d_real, d_fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.3])
    # D: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 0.5) / 2 + (0 + 1.3) / 2
    assert float(tr._d_loss(d_real, d_fake)) == pytest.approx(0.9)
    assert float(tr._g_loss(d_fake)) == pytest.approx(0.85)  # -mean(fake)


def test_bce_losses_match_a_hand_computation(data, tmp_path):
    tr = _trainer(data, tmp_path / "run", recipe="r1")
    d_real, d_fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0])
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731  -log sigmoid(x) = softplus(-x)
    want_d = (softplus(-0.0) + softplus(-2.0)) / 2 + softplus(-1.0)  # real target 1, fake target 0
    assert float(tr._d_loss(d_real, d_fake)) == pytest.approx(want_d, rel=1e-6)
    assert float(tr._g_loss(d_fake)) == pytest.approx(softplus(1.0), rel=1e-6)  # non-saturating: -log D(G(z))


def test_r1_penalty_is_the_squared_input_gradient(data, tmp_path):
    """R1 runs D with PyTorch's own kernels (for the second derivative); its gradient must equal the first-order
    input gradient of the fast kernels, an independent implementation, and reach D's weights."""
    tr = _trainer(data, tmp_path / "run", recipe="r1")
    tr.D.eval()  # BatchNorm on running statistics: both passes see the same function
    real = torch.from_numpy(tr.data.read(np.arange(4))).float().unsqueeze(1)
    x = real.clone().requires_grad_(True)
    (fast_grad,) = torch.autograd.grad(tr.D.logits(x).sum(), x)
    want = float(fast_grad.pow(2).flatten(1).sum(1).mean())
    penalty = tr._r1_penalty(real)
    assert float(penalty.detach()) == pytest.approx(want, rel=1e-4)
    penalty.backward()
    weights = [blk[0].weight for blk in tr.D.blocks] + [tr.D.head.weight]  # the head's bias cannot change it
    assert all(w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0 for w in weights)


def test_shift_moves_each_grid_by_its_own_offset_and_fills_empty_space():
    x = torch.zeros(2, 1, 8, 8, 8)
    x[0, 0, 0, 3, 5] = 1.0  # at the edge of axis 0: a shift towards -x drops it
    x[1, 0, 4, 4, 4] = 1.0  # in the middle: always kept
    x.requires_grad_(True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(3)
    offsets = torch.randint(0, 5, (2, 3), generator=torch.Generator().manual_seed(3)) - 2  # what the draw gives
    y = random_shift(x, 2, generator=gen)
    for i, src in enumerate([(0, 3, 5), (4, 4, 4)]):
        # output voxel p comes from input voxel p + offset - ... : padded crop starts at `draw`, so p = src - draw + 2
        dest = tuple(s - int(o) for s, o in zip(src, offsets[i]))
        inside = all(0 <= d < 8 for d in dest)
        assert float(y[i].detach().sum()) == (1.0 if inside else 0.0)
        if inside:
            assert float(y[i, 0].detach()[dest]) == 1.0
    y.sum().backward()
    for i in range(2):  # every input voxel that stays inside the grid reaches the output once
        kept = np.prod([8 - abs(int(o)) for o in offsets[i]])
        assert float(x.grad[i].sum()) == kept


def test_spectral_discriminator_has_unit_spectral_norms_and_no_batchnorm():
    p = get_profile("tiny16").replace(d_norm="spectral")
    d = Discriminator(p).train()
    x = torch.rand(4, 16, 16, 16)
    for _ in range(30):  # power iteration converges while training
        d.logits(x)
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in d.modules())
    for conv in [blk[0] for blk in d.blocks] + [d.head]:
        w = conv.weight.detach()
        sigma = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe_trains_saves_and_reloads(data, tmp_path, recipe):
    from gan_core.runtime import load_model

    tr = _trainer(data, tmp_path / recipe, recipe=recipe, max_steps=3, snapshot_every=1)
    tr.run()
    rows = [r for r in map(__import__("json").loads, (tmp_path / recipe / "metrics.jsonl").open()) if r["type"] == "step"]
    assert len(rows) == 3 and all(np.isfinite(r["g_loss"]) and np.isfinite(r["d_loss"]) for r in rows)
    if RECIPES[recipe].get("d_acc_threshold") == 1.0:
        assert all(r["d_updated"] for r in rows)
    model = load_model(tmp_path / recipe / "latest.pt", device="cpu", precision="fp32")
    assert model.profile.d_norm == RECIPES[recipe].get("d_norm", "batch")
    assert model.generate(np.zeros((1, model.profile.z_dim), np.float32)).shape == (1, 16, 16, 16)


def test_a_recipe_sets_r1_only_every_nth_step(data, tmp_path):
    tr = _trainer(data, tmp_path / "run", recipe="r1", r1_every=2)
    rows = [tr.train_step(tr.data.read(np.arange(8))) for _ in range(4)]
    assert [("r1" in r) for r in rows] == [True, False, True, False]  # steps 0 and 2 (the count before the step)
