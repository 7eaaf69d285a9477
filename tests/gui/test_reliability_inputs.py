"""Every kind of bad file through the running explorer's real handlers (menus and their file dialogs, drops,
the Training tab's pickers): each gives a one-line message in the window naming the file, or is accepted
when it is odd but valid; nothing escapes as an exception, nothing hangs, and the user's session (endpoints,
operands, history, undo stack, model, bank) is exactly as before. Cases: tests/gui/reliability_inputs.py."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tests.gui.reliability_fixtures import armed, guard  # noqa: F401 (fixtures)
from tests.gui.reliability_harness import idle, wait_for
from tests.gui.reliability_inputs import ROUTES, run_gui_case
from tests.gui.reliability_sessions import pickle_ran


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_bad_files_give_a_message_and_lose_nothing(armed, guard, tmp_path, route):
    cases = ROUTES[route]()
    outcomes = [run_gui_case(armed, case, tmp_path / f"case{i}", guard) for i, case in enumerate(cases)]
    problems = [f"{o.case.name}: {o.result}: {o.detail}" for o in outcomes if o.result in ("wrong", "crash", "slow")]
    problems += [f"{o.case.name}: changed {o.lost}" for o in outcomes if o.lost]
    assert not problems, "\n".join(problems)
    assert not pickle_ran(tmp_path), "a loader ran a pickle"
    tally = Counter(o.result for o in outcomes)
    if any(c.expect == "error" for c in cases):
        assert tally["clean"] > 0, tally  # the route refused some input, with a message
    assert tally["accepted"] > 0, tally  # and took its valid control
    # and the app still works: a new endpoint is generated and shown
    win = armed
    shown = win.interpolate.view_a.shown_count
    win.tabs.setCurrentWidget(win.interpolate)
    win.state.seed_slot("A", 12345)
    assert wait_for(lambda: idle(win) and win.interpolate.view_a.shown_count > shown, 30)
    np.testing.assert_array_equal(win.interpolate.channels[0].result.z, win.state.slot("A").z)
