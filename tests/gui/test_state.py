"""The session model without widgets: fields, undo/redo, derived latents, sessions on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gan_core.errors import BadFileError, BadInputError
from gan_core.latent import arithmetic, slerp
from explorer.session import RecentFiles, apply_session, load_session, save_session
from explorer.state import SLOTS, SessionState


def test_new_session_fills_every_slot_from_seeds(state, tiny_model):
    for i, name in enumerate(SLOTS):
        lat = state.slot(name)
        assert lat is not None and lat.seed == i and lat.z.shape == (32,)
        np.testing.assert_array_equal(lat.z, tiny_model.sample_z(1, seed=i)[0])
    assert state.undo_stack.count() == 0
    np.testing.assert_allclose(state.current_z(), slerp(state.slot("A").z, state.slot("B").z, 0.5), atol=1e-6)


def test_a_models_showcase_seeds_fill_the_first_slots(fresh_model):
    fresh_model.default_seeds = (11, 4)
    st = SessionState(fresh_model)
    assert [st.slot(n).seed for n in SLOTS] == [11, 4] + list(range(2, len(SLOTS)))
    np.testing.assert_array_equal(st.slot("A").z, fresh_model.sample_z(1, seed=11)[0])


def test_changes_emit_field_names_and_undo_redo_restores_them(state):
    seen = []
    state.changed.connect(seen.append)
    old = state.slot("A")
    state.seed_slot("A", 42)
    assert "slot:A" in seen[-2] or "slot:A" in seen[-1]
    assert state.slot("A").seed == 42
    state.undo_stack.undo()
    assert state.slot("A") is old
    state.undo_stack.redo()
    assert state.slot("A").seed == 42


def test_a_drag_is_one_undo_step_and_a_new_drag_another(state):
    state.break_merge()
    for t in (0.1, 0.2, 0.3):
        state.set_t(t)
    state.break_merge()
    for t in (0.6, 0.7):
        state.set_t(t)
    assert state.undo_stack.count() == 2
    state.undo_stack.undo()
    assert state.t == pytest.approx(0.3)
    state.undo_stack.undo()
    assert state.t == pytest.approx(0.5)


def test_current_override_and_back_to_the_path(state):
    z = np.ones(32, np.float32)
    state.set_current(z, "ones")
    np.testing.assert_array_equal(state.current_z(), z)
    assert state.current_label() == "ones"
    state.set_t(0.25)  # moving on the path drops the explicit shape
    assert state.current is None
    np.testing.assert_allclose(state.current_z(), state.path_z(0.25))
    state.undo_stack.undo()
    assert state.current is not None and state.t == pytest.approx(0.5)


def test_arithmetic_uses_weights(state):
    state.set_weights((1.0, 0.5, 2.0))
    a, b, c = (state.slot(s).z for s in "abc")
    np.testing.assert_allclose(state.arithmetic_z(), arithmetic(a, b, c, (1.0, 0.5, 2.0)))


def test_bad_values_are_refused_with_messages(state):
    with pytest.raises(BadInputError, match="takes 32"):
        state.set_slot("A", np.zeros(200), "wrong size")
    with pytest.raises(BadInputError, match="NaN"):
        state.set_current(np.full(32, np.nan), "nan")
    with pytest.raises(BadInputError, match="lerp or slerp"):
        state.set_mode("cubic")
    with pytest.raises(BadInputError, match="between 0 and 1"):
        state.set_level(1.5)
    assert state.undo_stack.count() == 0


def test_history_keeps_newest_first_without_duplicates(state):
    state.seed_slot("A", 7)
    state.seed_slot("B", 8)
    state.seed_slot("A", 7)
    labels = [h.label for h in state.history[:2]]
    assert labels == ["seed 7", "seed 8"]


def test_model_with_another_z_dim_reseeds_slots(state):
    from gan_core.runtime import load_model

    state.seed_slot("A", 5)
    big = load_model(profile="fast32", device="cpu")
    state.set_model(big)
    assert state.slot("A").z.shape == (200,) and state.slot("A").seed == 5
    assert state.undo_stack.count() == 0


def test_session_round_trip(tmp_path, state, tiny_model):
    state.seed_slot("B", 99)
    state.set_t(0.3)
    state.set_mode("lerp")
    state.set_weights((1.0, 2.0, 0.5))
    state.set_level(0.4)
    state.set_display("voxels")
    state.set_current(np.arange(32, dtype=np.float32) / 32, "ramp")
    path = save_session(state, tmp_path / "s.json")
    assert (tmp_path / "s.npz").exists()
    assert json.loads(path.read_text())["format"] == "gan3d-session"
    other = SessionState(tiny_model)
    apply_session(other, load_session(path))
    for key in ("t", "mode", "weights", "level", "display", "linked"):
        assert other.snapshot()[key] == state.snapshot()[key]
    for name in SLOTS:
        np.testing.assert_array_equal(other.slot(name).z, state.slot(name).z)
        assert other.slot(name).label == state.slot(name).label
    np.testing.assert_array_equal(other.current_z(), state.current_z())
    assert [h.label for h in other.history] == [h.label for h in state.history]
    assert other.undo_stack.count() == 0


def test_session_errors_are_clear(tmp_path, state):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BadFileError, match="not a readable session"):
        load_session(bad)
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(BadFileError, match="not a gan3d session"):
        load_session(tmp_path / "other.json")
    path = save_session(state, tmp_path / "s.json")
    (tmp_path / "s.npz").unlink()
    with pytest.raises(BadFileError, match="missing"):
        load_session(path)


def test_session_from_a_model_with_another_z_dim_is_refused(tmp_path, state):
    from gan_core.runtime import load_model

    path = save_session(state, tmp_path / "s.json")
    big = SessionState(load_model(profile="fast32", device="cpu"))
    with pytest.raises(BadFileError, match="Open that checkpoint first"):
        apply_session(big, load_session(path))


def test_recent_files_most_recent_first(tmp_path, settings):
    rec = RecentFiles(settings, size=2)
    for name in ("a.json", "b.json", "a.json", "c.json"):
        rec.add("sessions", tmp_path / name)
    assert [p.rsplit("/", 1)[-1] for p in rec.get("sessions")] == ["c.json", "a.json"]
