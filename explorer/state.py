"""The session model: every latent the explorer shows, and how it is shown. No widgets here.

Panels are thin views over :class:`SessionState`: they listen to :attr:`SessionState.changed` (a set of
field names) and write back only through its ``set_*`` methods. Every write that changes a shape goes
through a :class:`QUndoStack` command, so Edit > Undo / Redo covers slot fills, slider moves (one drag is
one step), arithmetic weights, iso level and display mode.

Fields (names used in ``changed``):

* ``slot:A`` ``slot:B``: the interpolation endpoints; ``slot:a`` ``slot:b`` ``slot:c``: the arithmetic
  operands (z_a - z_b + z_c). Each is a :class:`Latent` (z, a label, the seed it came from if any).
* ``keys``: keyframes between A and B (a tuple of :class:`Latent`): the path runs A -> keys -> B, keyframe j
  of K at t = j / (K - 1).
* ``t``, ``mode``: position on the path and "slerp" / "lerp" (per segment) or "spline" (smooth through all).
* ``weights``: the three arithmetic weights. ``rescale``: bring the arithmetic result back to the prior's
  typical norm (:func:`gan_core.latent.arithmetic`; on by default), else keep the raw sum.
* ``current``: an explicit current shape (a retrieved or reconstructed one), or None, meaning the current
  shape is the point at ``t`` on the A -> B path.
* ``reconstruction``: the latest single-image reconstruction (its z and image path).
* ``level``, ``display``: iso level and "mesh" / "voxels". ``linked``: one camera for every view.
* ``history`` (not undoable): recent latents, for the "From history" menus.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QUndoCommand, QUndoStack

from gan_core.errors import BadInputError
from gan_core.latent import along_keyframes, arithmetic, interpolate

log = logging.getLogger(__name__)

ENDPOINTS = ("A", "B")
OPERANDS = ("a", "b", "c")
SLOTS = ENDPOINTS + OPERANDS
MODES = ("slerp", "lerp", "spline")
DISPLAYS = ("mesh", "voxels")
HISTORY_SIZE = 30
MAX_SEED = 2**31 - 1  # seeds the slot editors (a QSpinBox) can show
PATH_FIELDS = frozenset({"slot:A", "slot:B", "keys", "t", "mode", "current"})
ARITH_FIELDS = frozenset({"slot:a", "slot:b", "slot:c", "weights", "rescale"})
LOOK_FIELDS = frozenset({"level", "display"})


@dataclass(frozen=True, eq=False)
class Latent:
    """One latent vector with where it came from. ``z`` is a read-only float32 copy (z_dim,)."""

    z: np.ndarray
    label: str
    seed: int | None = None
    image: str | None = None  # the image a reconstruction came from

    @staticmethod
    def of(z: np.ndarray, label: str, seed: int | None = None, image: str | None = None) -> Latent:
        arr = np.array(z, dtype=np.float32).reshape(-1)
        arr.setflags(write=False)
        return Latent(arr, label, seed, image)

    def same_as(self, other: Latent | None) -> bool:
        return other is not None and self.z.shape == other.z.shape and bool(np.array_equal(self.z, other.z))


class _SetFields(QUndoCommand):
    """Set some state fields; undo restores them. Commands with the same non-negative merge id and merge
    token fold into one (a slider drag is one undo step)."""

    def __init__(self, state: SessionState, new: dict[str, Any], text: str, merge_id: int = -1) -> None:
        super().__init__(text)
        self._state = state
        self.new = dict(new)
        self.old = {k: state._get(k) for k in new}
        self._merge_id = merge_id
        self.token = state._merge_token

    def id(self) -> int:  # noqa: A003 (Qt's name)
        return self._merge_id

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802
        if not isinstance(other, _SetFields) or other.token != self.token or other.new.keys() != self.new.keys():
            return False
        self.new = dict(other.new)
        return True

    def redo(self) -> None:
        self._state._apply(self.new)

    def undo(self) -> None:
        self._state._apply(self.old)


class SessionState(QObject):
    """Observable, undoable session. See the module docstring for the fields.

    Signals
    -------
    changed(frozenset[str])
        Field names whose value changed (one emission per command, undo or redo).
    modelChanged(object)
        The generator was replaced (a checkpoint opened or hot-swapped); every view regenerates.
    bankChanged(object)
        A feature bank was opened (or None).
    """

    changed = pyqtSignal(object)
    modelChanged = pyqtSignal(object)
    bankChanged = pyqtSignal(object)

    def __init__(self, model: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self._merge_token = 0
        self._values: dict[str, Any] = {
            **{f"slot:{s}": None for s in SLOTS}, "keys": (), "t": 0.5, "mode": "slerp", "weights": (1.0, 1.0, 1.0),
            "rescale": True, "current": None, "reconstruction": None, "level": 0.5, "display": "mesh", "linked": True,
        }
        self.history: list[Latent] = []
        self.model: Any = None
        self.bank: Any = None
        self.bank_path: str | None = None
        if model is not None:
            self.set_model(model)

    # -- reading -------------------------------------------------------------------------------------------
    def _get(self, key: str) -> Any:
        return self._values[key]

    def slot(self, name: str) -> Latent | None:
        return self._values[f"slot:{name}"]

    @property
    def keys(self) -> tuple[Latent, ...]:
        """The keyframes between A and B."""
        return self._values["keys"]

    def key_t(self, i: int) -> float:
        """Where keyframe ``i`` (0 = A, len(keys) + 1 = B) sits on the path."""
        return i / (len(self.keys) + 1)

    @property
    def t(self) -> float:
        return self._values["t"]

    @property
    def mode(self) -> str:
        return self._values["mode"]

    @property
    def weights(self) -> tuple[float, float, float]:
        return self._values["weights"]

    @property
    def rescale(self) -> bool:
        """Whether the arithmetic result is brought back to the prior's typical norm."""
        return self._values["rescale"]

    @property
    def current(self) -> Latent | None:
        """The explicit current shape, or None when the current shape is on the A -> B path."""
        return self._values["current"]

    @property
    def reconstruction(self) -> Latent | None:
        return self._values["reconstruction"]

    @property
    def level(self) -> float:
        return self._values["level"]

    @property
    def display(self) -> str:
        return self._values["display"]

    @property
    def linked(self) -> bool:
        return self._values["linked"]

    @property
    def z_dim(self) -> int | None:
        return None if self.model is None else int(self.model.profile.z_dim)

    def path_z(self, t: float | np.ndarray) -> np.ndarray | None:
        """z at ``t`` (scalar or (T,)) on the path A -> keys -> B, or None while an endpoint is empty."""
        a, b = self.slot("A"), self.slot("B")
        if a is None or b is None:
            return None
        if not self.keys and self.mode != "spline":
            return interpolate(a.z, b.z, t, self.mode)
        return along_keyframes([a.z, *(k.z for k in self.keys), b.z], t, self.mode)

    def current_z(self) -> np.ndarray | None:
        """The z of the shape in the centre view (z_dim,)."""
        cur = self.current
        return cur.z if cur is not None else self.path_z(self.t)

    def current_label(self) -> str:
        cur = self.current
        if cur is not None:
            return cur.label
        return f"A \u2192 B, t = {self.t:.3f} ({self.mode})"

    def arithmetic_z(self) -> np.ndarray | None:
        """w_a z_a - w_b z_b + w_c z_c (rescaled to the model's prior norm with :attr:`rescale`), or None while
        a slot is empty."""
        slots = [self.slot(s) for s in OPERANDS]
        if any(s is None for s in slots):
            return None
        prior = getattr(getattr(self.model, "profile", None), "z_prior", "normal") if self.rescale else None
        return arithmetic(slots[0].z, slots[1].z, slots[2].z, self.weights, prior=prior)  # type: ignore[union-attr]

    # -- writing (undoable) --------------------------------------------------------------------------------
    def _push(self, new: dict[str, Any], text: str, merge_id: int = -1) -> None:
        if all(_same(self._values[k], v) for k, v in new.items()):
            return
        self.undo_stack.push(_SetFields(self, new, text, merge_id))

    def _apply(self, values: dict[str, Any]) -> None:
        changed = {k for k, v in values.items() if not _same(self._values[k], v)}
        self._values.update(values)
        if changed:
            self.changed.emit(frozenset(changed))

    def _check(self, z: np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(z, dtype=np.float32).reshape(-1)
        if self.z_dim is not None and arr.shape[0] != self.z_dim:
            raise BadInputError(f"{what}: z has {arr.shape[0]} values but the model takes {self.z_dim}")
        if not np.isfinite(arr).all():
            raise BadInputError(f"{what}: z contains NaN or Inf")
        return arr

    def set_slot(self, name: str, z: np.ndarray, label: str, *, seed: int | None = None) -> None:
        """Fill endpoint A/B or arithmetic operand a/b/c."""
        if name not in SLOTS:
            raise BadInputError(f"unknown slot {name!r}; use one of {', '.join(SLOTS)}")
        lat = Latent.of(self._check(z, f"slot {name}"), label, seed)
        self._push({f"slot:{name}": lat}, f"Set {name} to {label}")
        self.remember(lat)

    def seed_slot(self, name: str, seed: int) -> None:
        """Fill a slot with the model's prior sample for ``seed``."""
        if self.model is None:
            raise BadInputError("no model is loaded yet")
        self.set_slot(name, self.model.sample_z(1, seed=int(seed))[0], f"seed {int(seed)}", seed=int(seed))

    def set_t(self, t: float, *, snap_to_path: bool = True) -> None:
        """Move along the A -> B path; consecutive moves between two :meth:`break_merge` calls are one undo
        step. With ``snap_to_path`` an explicit current shape is dropped (the centre view follows t)."""
        t = float(min(1.0, max(0.0, t)))
        new: dict[str, Any] = {"t": t}
        if snap_to_path and self.current is not None:
            new["current"] = None
        self._push(new, f"Move to t = {t:.3f}", merge_id=1 if "current" not in new else -1)

    def break_merge(self) -> None:
        """Start a new undo step for the next slider move (call on slider press)."""
        self._merge_token += 1

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise BadInputError(f"unknown interpolation mode {mode!r}; use lerp or slerp")
        self._push({"mode": mode}, f"Interpolate with {mode}")

    def set_weights(self, weights: tuple[float, float, float]) -> None:
        w = tuple(float(x) for x in weights)
        if len(w) != 3 or not all(np.isfinite(w)):
            raise BadInputError(f"arithmetic weights must be three finite numbers, got {weights}")
        self._push({"weights": w}, "Change arithmetic weights", merge_id=2)

    def set_rescale(self, on: bool) -> None:
        """Rescale the arithmetic result to the prior's typical norm (True) or keep the raw sum."""
        self._push({"rescale": bool(on)}, "Rescale the arithmetic result" if on else "Keep the raw arithmetic sum")

    def set_current(self, z: np.ndarray | None, label: str = "", *, merge: bool = False) -> None:
        """Show ``z`` in the centre view (None: back to the point at t on the path). With ``merge`` (a slider
        drag) moves between two :meth:`break_merge` calls are one undo step and stay out of the history."""
        if z is None:
            self._push({"current": None}, "Follow the A \u2192 B path")
            return
        lat = Latent.of(self._check(z, "current shape"), label or "shape")
        self._push({"current": lat}, f"Show {lat.label}", merge_id=4 if merge else -1)
        if not merge:
            self.remember(lat)

    def insert_key(self, i: int, z: np.ndarray, label: str = "") -> None:
        """Make ``z`` keyframe ``i`` of the path (1 .. len(keys) + 1: after A, before B)."""
        if not 1 <= i <= len(self.keys) + 1:
            raise BadInputError(f"a keyframe goes between A and B: position 1 to {len(self.keys) + 1}, got {i}")
        lat = Latent.of(self._check(z, "keyframe"), label or "keyframe")
        keys = list(self.keys)
        keys.insert(i - 1, lat)
        self._push({"keys": tuple(keys)}, f"Add keyframe {lat.label}")

    def remove_key(self, i: int) -> None:
        """Drop keyframe ``i`` (1 .. len(keys)); the path closes over it."""
        self._key_index(i)
        self._push({"keys": self.keys[:i - 1] + self.keys[i:]}, f"Remove keyframe {i}")

    def clear_keys(self) -> None:
        """Back to the two-point path A -> B (one undo step)."""
        self._push({"keys": ()}, "Remove every keyframe")

    def replace_key(self, i: int, z: np.ndarray, label: str = "") -> None:
        """Put ``z`` in place of keyframe ``i`` (1 .. len(keys))."""
        self._key_index(i)
        lat = Latent.of(self._check(z, "keyframe"), label or "keyframe")
        self._push({"keys": self.keys[:i - 1] + (lat,) + self.keys[i:]}, f"Replace keyframe {i} by {lat.label}")

    def move_key(self, i: int, to: int) -> None:
        """Move keyframe ``i`` to position ``to`` (both 1 .. len(keys))."""
        self._key_index(i)
        self._key_index(to)
        keys = list(self.keys)
        keys.insert(to - 1, keys.pop(i - 1))
        self._push({"keys": tuple(keys)}, f"Move keyframe {i} to {to}")

    def _key_index(self, i: int) -> None:
        if not 1 <= i <= len(self.keys):
            raise BadInputError(f"no keyframe {i}: the path has {len(self.keys)} between A and B")

    def set_reconstruction(self, z: np.ndarray, image: str, label: str = "") -> None:
        lat = Latent.of(self._check(z, "reconstruction"), label or f"image {image}", image=image)
        self._push({"reconstruction": lat}, f"Reconstruct {lat.label}")
        self.remember(lat)

    def set_level(self, level: float) -> None:
        level = float(level)
        if not 0.0 < level < 1.0:
            raise BadInputError(f"iso level must be between 0 and 1, got {level}")
        self._push({"level": level}, f"Iso level {level:.2f}", merge_id=3)

    def set_display(self, display: str) -> None:
        if display not in DISPLAYS:
            raise BadInputError(f"unknown display mode {display!r}; use mesh or voxels")
        self._push({"display": display}, f"Show {display}")

    def set_linked(self, linked: bool) -> None:
        """Link cameras (a view setting: not undoable)."""
        self._apply({"linked": bool(linked)})

    # -- not undoable --------------------------------------------------------------------------------------
    def remember(self, lat: Latent) -> None:
        """Add a latent to the history (newest first, no duplicates)."""
        self.history = [lat] + [h for h in self.history if not h.same_as(lat)][: HISTORY_SIZE - 1]
        self.changed.emit(frozenset({"history"}))

    def remember_current(self) -> None:
        z = self.current_z()
        if z is not None:
            self.remember(Latent.of(z, self.current_label()))

    def set_model(self, model: Any) -> None:
        """Swap the generator. Latents are kept when z_dim matches (the same z, shown by the new weights);
        otherwise every slot is refilled from its seed (or a default seed) and undo history is cleared."""
        old_dim = self.z_dim
        self.model = model
        if model is not None and old_dim != self.z_dim:
            self.undo_stack.clear()
            self.history = []
            values: dict[str, Any] = {"current": None, "reconstruction": None, "keys": ()}
            showcase = tuple(getattr(model, "default_seeds", ()))  # seeds the registry picked for this model
            for i, s in enumerate(SLOTS):
                old = self.slot(s)
                seed = old.seed if old is not None and old.seed is not None else (
                    showcase[i] if i < len(showcase) else i)
                values[f"slot:{s}"] = Latent.of(model.sample_z(1, seed=seed)[0], f"seed {seed}", seed)
            self._apply(values)
        self.modelChanged.emit(model)

    def set_bank(self, bank: Any, path: str | None = None) -> None:
        self.bank, self.bank_path = bank, path
        self.bankChanged.emit(bank)

    # -- sessions ------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The undoable fields and the history, for :mod:`explorer.session`."""
        return {**self._values, "history": list(self.history)}

    def restore(self, values: dict[str, Any]) -> None:
        """Replace the session (after :mod:`explorer.session` validated it); clears undo history."""
        vals = dict(values)
        history = vals.pop("history", [])
        for k, v in [*vals.items(), *(("history", h) for h in history), *(("keys", x) for x in vals.get("keys", ()))]:
            if isinstance(v, Latent):
                self._check(v.z, k)  # before anything changes: a bad session leaves the state as it was
        self.undo_stack.clear()
        self.history = list(history)
        self._apply({k: v for k, v in vals.items() if k in self._values})
        self.changed.emit(frozenset({"history"}))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Latent) or isinstance(b, Latent):
        return a is b or (isinstance(a, Latent) and isinstance(b, Latent) and a.same_as(b) and a.label == b.label)
    return bool(a == b)
