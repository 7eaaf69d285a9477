"""The explorer survives an impatient user (tests/gui/reliability_stress.py): hundreds of slider events,
switching tabs and the dock while shapes generate, undo/redo hammering, a checkpoint opened mid-drag, and
closing the window while every kind of worker runs. Nothing escapes as an exception, the views end on the
session's shapes, a drag is one undo step, and closing ends every thread and process without hanging."""

from __future__ import annotations

import pytest

from tests.gui.reliability_fixtures import armed, guard  # noqa: F401 (fixtures)
from tests.gui import reliability_stress as stress


@pytest.fixture
def checkpoint(tmp_path):
    """A tiny16 checkpoint with other weights than the window's model."""
    from gan_core.checkpoint import save_checkpoint
    from gan_core.runtime import load_model

    other = load_model(profile="tiny16", device="cpu", precision="fp32")
    for p in other.generator.parameters():
        p.data.mul_(1.5)
    return save_checkpoint(tmp_path / "other.pt", profile=other.profile, models={"generator": other.generator})


def check(out):
    assert out.result == "clean", f"{out.result}: {out.detail}"


def test_500_slider_events_in_one_drag(armed, guard):
    check(stress.slider_drag(armed, guard, 500))


def test_dragging_while_switching_tabs_and_the_dock(armed, guard):
    check(stress.slider_drag(armed, guard, 500, switch_tabs=True))


def test_iso_slider_and_seed_box_hammered(armed, guard):
    check(stress.iso_and_seeds(armed, guard, 300))


def test_undo_redo_hammered_while_generating(armed, guard):
    check(stress.undo_redo(armed, guard, 200))


def test_a_checkpoint_opened_mid_drag(armed, guard, checkpoint):
    check(stress.swap_mid_drag(armed, guard, checkpoint))


def test_closing_while_every_worker_runs(armed, guard, checkpoint):
    check(stress.close_while_busy(armed, guard, checkpoint))
