"""Faults injected into the running explorer (tests/gui/reliability_faults_gui.py): writes into a read-only
folder, onto a full disk and past a file-size limit; the trainer of the Training tab failing on bad data, a
read-only run folder, a full disk, SIGKILL, or not starting at all. Each is a one-line message in the
window (and the trainer's last lines in its tab); previous files stay byte-identical, no temporary file is
left, the session is unchanged and the app goes on generating shapes."""

from __future__ import annotations

import pytest

from tests.gui.reliability_faults_gui import TRAINER_FAULTS, WRITE_FAULTS, WRITES, trainer_fault, write_fault
from tests.gui.reliability_fixtures import armed, guard, read_only  # noqa: F401 (fixtures)
from tests.gui.reliability_harness import idle, wait_for


@pytest.mark.parametrize("what", sorted(WRITES))
def test_failed_writes_are_messages_and_keep_the_previous_file(armed, guard, tmp_path, read_only, what):
    faults = WRITE_FAULTS + (("disk fills between the two halves",) if what == "save session" else ())
    outcomes = {f: write_fault(armed, what, f, tmp_path / f"fault{i}", guard, read_only) for i, f in enumerate(faults)}
    problems = [f"{f}: {o.result}: {o.detail}" for f, o in outcomes.items() if o.result != "clean"]
    problems += [f"{f}: lost {o.lost}" for f, o in outcomes.items() if o.lost]
    assert not problems, "\n".join(problems)
    # the same write, with the fault gone, succeeds: the faults above were what failed
    name, ask = WRITES[what]
    target = tmp_path / "fine" / name
    target.parent.mkdir()
    ask(armed, target)
    assert wait_for(lambda: idle(armed) and bool(armed.messages.messages), 90)
    assert armed.messages.messages[-1][1] == "info", armed.messages.text()
    assert target.exists()


@pytest.mark.parametrize("fault", TRAINER_FAULTS)
def test_a_failing_trainer_shows_its_error_in_the_tab_and_the_app_goes_on(armed, guard, tmp_path, read_only, fault):
    out = trainer_fault(armed, fault, tmp_path, guard, read_only)
    assert out.result == "clean" and not out.lost, f"{out.result}: {out.detail} lost={out.lost}"


def test_a_sequence_export_to_an_unknown_format_is_a_message(armed, guard, tmp_path):
    from tests.gui.reliability_harness import dialogs

    with dialogs(tmp_path / "path.txt"):  # the user typed another suffix into the save dialog
        armed.interpolate.export_sequence(".gif")
    assert wait_for(lambda: idle(armed) and bool(armed.messages.messages), 30)
    level, text = armed.messages.messages[-1][1:]
    assert level == "error" and "path.txt" in text and ".gif" in text and "\n" not in text
    assert not (tmp_path / "path.txt").exists()
