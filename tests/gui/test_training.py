"""Training panel: curves from a metrics file, preview samples, the trainer process (a tiny fake)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from gan_core.data.dataset import save_voxel_npz
from explorer.panels.training import TrainingPanel


@pytest.fixture
def panel(qtbot, ctx):
    p = TrainingPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    yield p
    p.shutdown(wait_ms=5000)


def write_run(folder, steps=6):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"t": 0, "type": "config", "resumed_at_step": 0}]
    lines += [{"t": i, "type": "step", "epoch": 0, "step": i, "g_loss": 2.0 - 0.1 * i, "d_loss": 0.7,
               "d_acc": 0.5 + 0.05 * i, "d_updated": i % 2 == 0} for i in range(1, steps + 1)]
    lines += [{"t": 9, "type": "epoch", "epoch": 1, "step": steps, "g_loss": 1.5, "warning": None}]
    text = "".join(json.dumps(r) + "\n" for r in lines)
    (folder / "metrics.jsonl").write_text(text + '{"t": 10, "type": "step", "ep')  # a line being written
    vox = np.zeros((8, 16, 16, 16), np.uint8)
    vox[:, 4:12, 4:12, 2:14] = 1
    save_voxel_npz(folder / "samples" / "latest.npz", vox, z=np.zeros((8, 32), np.float32))
    (folder / "latest.pt").write_bytes(b"")


def test_watching_a_run_draws_its_curves_and_samples(panel, tmp_path):
    write_run(tmp_path / "run")
    panel.out.setText(str(tmp_path / "run"))
    panel.watch_run()
    x, y = panel.g_curve.getData()
    assert list(x) == [1, 2, 3, 4, 5, 6] and y[0] == pytest.approx(1.9)
    assert panel.acc_curve.getData()[1][-1] == pytest.approx(0.8)
    assert panel.rate_curve.getData()[1][-1] == pytest.approx(0.5)
    assert all(th.voxels is not None for th in panel.previews)
    assert panel.use_btn.isEnabled() and panel.resume_btn.isEnabled()
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:  # the partial line completes
        f.write('och": 1, "step": 7, "g_loss": 1.0, "d_loss": 0.6, "d_acc": 0.9, "d_updated": false}\n')
    panel.poll()
    assert list(panel.g_curve.getData()[0])[-1] == 7


def test_command_line_for_start_and_resume(panel, tmp_path):
    panel.data.setText("/data/set.npz")
    panel.out.setText(str(tmp_path / "r"))
    panel.profile.setCurrentText("tiny16")
    panel.epochs.setValue(3)
    args = panel.command(resume=True)
    assert args[:3] == ["-m", "gan_core.cli", "train"]
    assert args[args.index("--profile") + 1] == "tiny16" and args[args.index("--epochs") + 1] == "3"
    assert args[-1] == "--resume" and "--classes" not in args
    assert args[args.index("--recipe") + 1] == "fast"  # the default: the paper's collapses at 32^3
    panel.recipe.setCurrentIndex(panel.recipe.findData("paper"))
    assert panel.command(resume=False)[panel.command(resume=False).index("--recipe") + 1] == "paper"


def test_recipes_offered_are_the_ones_gan3d_train_takes():
    from explorer.panels.training import RECIPES
    from gan_core.config import RECIPES as CORE_RECIPES

    assert sorted(name for name, _ in RECIPES) == sorted(CORE_RECIPES)


def test_classes_come_from_the_data_file(panel, synthetic_npz):
    panel.data.setText(str(synthetic_npz))
    panel._load_classes()
    assert panel.classes.count() == 5
    from PyQt6.QtCore import Qt

    panel.classes.item(1).setCheckState(Qt.CheckState.Checked)
    args = panel.command(resume=False)
    assert args[args.index("--classes") + 1] == panel.classes.item(1).text()


def test_a_crashed_trainer_shows_its_last_stderr_lines(qtbot, panel, tmp_path):
    panel.out.setText(str(tmp_path / "crash"))
    code = "import sys; print('loading', file=sys.stderr); sys.stderr.write('BadFileError: data.npz: no voxels\\n'); sys.exit(1)"
    with qtbot.waitSignal(panel.ctx.notifier.message, timeout=20000) as sig:
        panel.start_process(sys.executable, ["-c", code])
    qtbot.waitUntil(lambda: not panel.running, timeout=20000)
    assert sig.args[0] == "error" and "BadFileError: data.npz: no voxels" in sig.args[1]
    assert not panel.errors.isHidden()
    assert "loading" in panel.errors.toPlainText() and "no voxels" in panel.errors.toPlainText()
    assert "exited with code 1" in panel.status.text()
    assert panel.start_btn.isEnabled() and not panel.stop_btn.isEnabled()


def test_stop_sends_sigterm_and_the_panel_reports_stopped(qtbot, panel, tmp_path):
    panel.out.setText(str(tmp_path / "stop"))
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
            "print('ready', file=sys.stderr, flush=True)\n"
            "time.sleep(60)\n")
    panel.start_process(sys.executable, ["-c", code])
    qtbot.waitUntil(lambda: "ready" in list(panel.stderr), timeout=20000)
    assert panel.stop_btn.isEnabled()
    panel.stop()
    qtbot.waitUntil(lambda: not panel.running, timeout=20000)
    assert panel.status.text().startswith("Stopped") and panel.errors.isHidden()


def test_use_this_checkpoint_asks_the_window_to_load_it(panel, tmp_path):
    write_run(tmp_path / "run")
    panel.out.setText(str(tmp_path / "run"))
    asked = []
    panel.ctx.actions["load_checkpoint"] = asked.append
    panel.use_checkpoint()
    assert asked == [str(tmp_path / "run" / "latest.pt")]
