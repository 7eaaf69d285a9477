"""The speed benchmark compares like with like: the same network and weights, calls alternating."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_core.bench import count_gflop, matmul_peak_gflops, paired_medians, plain_copy_of, plain_generate, train_row
from gan_core.runtime import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_paired_medians_alternate_and_measure_each_side():
    calls: list[str] = []
    base, ours = paired_medians(lambda: calls.append("b"), lambda: calls.append("o"), repeats=3, warmup=1)
    assert calls == ["b", "o"] * 4
    assert base.wall_ms >= 0 and ours.cpu_ms >= 0


def test_baseline_generator_computes_what_gan3d_computes():
    model = load_model(profile="tiny16", device="cpu", precision="fp32")
    z = model.sample_z(2, seed=3)
    np.testing.assert_allclose(plain_generate(plain_copy_of(model), z), model.generate(z, use_cache=False), atol=1e-5)


def test_train_row_times_both_steps_with_every_discriminator_update():
    row = train_row("tiny16", 4, repeats=1)
    assert row.name == "tiny16 train step, batch 4"  # no "D skipped" note
    assert row.baseline.wall_ms > 0 and row.ours.wall_ms > 0
    assert row.gflop > 0


def test_train_row_without_discriminator_updates_times_the_gated_step(monkeypatch):
    from gan_core.bench import plain_train_step
    from gan_core.config import get_profile

    row = train_row("tiny16", 4, repeats=1, update_d=False)
    assert row.name == "tiny16 train step, batch 4, D not updated"  # gan3d's gate skipped D in every step
    steps: list[torch.optim.Optimizer] = []
    adam_step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda opt, *a, **k: steps.append(opt) or adam_step(opt, *a, **k))
    plain_train_step(get_profile("tiny16"), 4, update_d=False)()
    plain_train_step(get_profile("tiny16"), 4)()
    assert len(steps) == 3  # the baseline updated G alone, then D and G


def test_arithmetic_is_counted_per_multiply_add_and_the_ceiling_is_a_rate():
    x, w = torch.zeros(2, 8, 3, 3, 3), torch.zeros(8, 4, 4, 4, 4)
    # every input voxel meets every output channel through 64 taps: 2 operations (multiply, add) each
    assert count_gflop(lambda: F.conv_transpose3d(x, w, stride=2, padding=1)) * 1e9 == 2 * 2 * 27 * 8 * 4 * 64
    assert count_gflop(lambda: x.sum()) == 0
    assert matmul_peak_gflops(n=256, repeats=2) > 0.1
