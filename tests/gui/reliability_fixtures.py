"""pytest fixtures of the GUI reliability tests (imported by tests/gui/test_reliability_*.py)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.gui.reliability_harness import Guard, idle, wait_for
from tests.gui.reliability_inputs import prepare


@pytest.fixture
def guard() -> Iterator[Guard]:
    """Fails the test if any exception escaped a slot, timer or thread, or Qt reported a critical error."""
    with Guard() as g:
        yield g
    assert not g.errors, "\n\n".join(g.errors)


@pytest.fixture
def armed(window: Any, guard: Guard) -> Any:
    """The main window, watched by the guard, with a session worth losing (see prepare)."""
    guard.watch(window)
    prepare(window)
    assert wait_for(lambda: idle(window), 30)
    return window


@pytest.fixture
def read_only(tmp_path: Any) -> Any:
    from tests.reliability_faults import read_only_dir

    return read_only_dir(tmp_path)
