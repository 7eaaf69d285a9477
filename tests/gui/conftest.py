"""GUI test fixtures: tiny16 models, a tiny feature bank, isolated settings, and the interactor leak check.

Without a display these tests run on Qt's offscreen platform, where the explorer uses its numpy stand-in
views (explorer.viewport.ProjectionView); tests marked ``render`` need VTK on a real X display (Xvfb) and are
skipped otherwise (scripts/test.sh runs them under xvfb-run).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    offscreen = os.environ.get("QT_QPA_PLATFORM") in ("offscreen", "minimal") or not os.environ.get("DISPLAY")
    if offscreen:
        skip = pytest.mark.skip(reason="renders with VTK: needs an X display (run under xvfb-run)")
        here = Path(__file__).parent
        for item in items:  # this hook sees the whole session: touch only the GUI tests
            if "render" in item.keywords and here in Path(str(item.path)).parents:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """One intra-op thread: on a busy 2-core machine two OpenMP threads make every step many times slower."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    """An untrained tiny16 model (16^3, z of 32): shared, nobody may change its weights."""
    from gan_core.runtime import load_model

    return load_model(profile="tiny16", device="cpu", precision="fp32")


@pytest.fixture
def fresh_model() -> Any:
    """A tiny16 model of the test's own (to modify, e.g. remove its encoder)."""
    from gan_core.runtime import load_model

    return load_model(profile="tiny16", device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def tiny_bank(tiny_model: Any, synthetic_set: Any) -> Any:
    """A feature bank of the 15 synthetic shapes made with tiny_model's discriminator."""
    from gan_core.features import FeatureBank

    vox, labels, classes = synthetic_set
    feats = {k: tiny_model.features(vox, kind=k) for k in ("paper", "last")}
    bank = FeatureBank(weights_hash=tiny_model.weights_hash(), profile="tiny16", dtype="float32")
    return bank.fit(feats, labels=np.asarray(labels), class_names=list(classes), thumbnails=np.asarray(vox))


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    from PyQt6.QtCore import QSettings

    return QSettings(str(tmp_path / "explorer.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def state(qtbot: Any, tiny_model: Any) -> Any:
    from explorer.state import SessionState

    return SessionState(tiny_model)


@pytest.fixture
def ctx(qtbot: Any, state: Any) -> Iterator[Any]:
    from explorer.context import AppContext

    c = AppContext(state)
    c.project_steps = 10  # projection quality is gan_core's business; here only the flow matters
    yield c
    c.shutdown()
    qtbot.waitUntil(lambda: not c.jobs.busy, timeout=10000)


@pytest.fixture
def window(qtbot: Any, tiny_model: Any, settings: Any) -> Iterator[Any]:
    """The main window on a tiny16 model, shown, with every view holding its first shape."""
    from explorer.state import SessionState
    from explorer.window import MainWindow

    win = MainWindow(SessionState(tiny_model), settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: all(v.shown_count for v in win.views() if v.isVisible()), timeout=20000)
    yield win
    win.shutdown()
    qtbot.waitUntil(lambda: not win.ctx.jobs.busy, timeout=10000)


@pytest.fixture
def interpolate_panel(qtbot: Any, ctx: Any, wait_idle: Any) -> Iterator[Any]:
    """The interpolation panel on ``ctx``, shown, with its first shapes in."""
    from explorer.panels.interpolate import InterpolatePanel

    p = InterpolatePanel(ctx)
    qtbot.addWidget(p)
    p.show()
    wait_idle(ctx)
    yield p
    p.close_views()


@pytest.fixture
def wait_idle(qtbot: Any) -> Any:
    """wait_idle(ctx): until no generation is pending or running, no job runs, and results were delivered."""
    def wait(ctx: Any, timeout: int = 10000) -> None:
        qtbot.waitUntil(lambda: not ctx.busy, timeout=timeout)
    return wait


@pytest.fixture(autouse=True)
def no_leaked_interactors() -> Iterator[None]:
    """Fail a test that leaves a QtInteractor open (it would keep a GL context and timers alive)."""
    yield
    from explorer.viewport import LIVE_INTERACTORS

    leaked = [p for p in list(LIVE_INTERACTORS) if not getattr(p, "_closed", True)]
    for p in leaked:
        p.close()
    if leaked:
        pytest.fail(f"{len(leaked)} QtInteractor(s) left open; close views (window.shutdown / close_view)")
