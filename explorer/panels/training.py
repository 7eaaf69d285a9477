"""Train a 3D-GAN without leaving the explorer: `gan3d train` runs as a separate process (the GUI never
trains in its own process), its metrics.jsonl is tailed into live curves, the newest preview samples are
shown, and its checkpoint can be hot-swapped into every view."""

from __future__ import annotations

import logging
import sys
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QProcess, QProcessEnvironment, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPlainTextEdit,
    QPushButton, QSpinBox, QWidget,
)
from PyQt6.QtCore import Qt

from explorer.context import AppContext
from explorer.metrics import Curves, MetricsTail
from explorer.widgets import Thumb, describe, hbox, pyqtgraph, vbox

log = logging.getLogger(__name__)
PROFILES = ("fast32", "tiny16", "paper64")  # gan_core.config.PROFILES (the explorer may not import config)
RECIPES = (  # gan_core.config.RECIPES, as `gan3d train --recipe` takes them; the first is the default
    ("fast", "Fast: stable, batches of 16"),
    ("stable", "Stable on a CPU (the bundled model's)"),
    ("paper", "The paper's (Wu et al. 2016)"),
    ("r1", "R1 penalty, D every step"),
    ("r1-aug", "R1 penalty, shifted shapes for D"),
    ("hinge", "Hinge loss, spectral-norm D"),
)
STDERR_LINES = 40
PREVIEWS = 8


class TrainingPanel(QWidget):
    sampleChosen = pyqtSignal()  # the chosen preview sample changed (a click, or new samples arrived)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.chosen = 0  # the preview sample the neighbours panel follows
        self.process: QProcess | None = None
        self.stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._stderr_buf = ""
        self._stop_requested = False
        self.tail: MetricsTail | None = None
        self.curves = Curves()
        self._samples_mtime = 0.0
        self._build_form()
        self._build_plots()
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(1000)
        self.poll_timer.timeout.connect(self.poll)
        self._sync_buttons()

    # -- layout --------------------------------------------------------------------------------------------
    def _build_form(self) -> None:
        self.data = describe(QLineEdit(), "Training data file", "A voxel set (.npz or .h5) with voxels, labels, classes")
        self.data.editingFinished.connect(self._load_classes)
        self.data_browse = describe(QPushButton("Browse\u2026"), "Choose training data file")
        self.data_browse.clicked.connect(self._choose_data)
        self.classes = describe(QListWidget(), "Classes to train on", "Tick the classes to train on (none: all)")
        self.classes.setMaximumHeight(110)
        self.profile = describe(QComboBox(), "Model profile", "fast32: 32^3, trains on a CPU; paper64: the paper's 64^3")
        self.profile.addItems(PROFILES)
        self.recipe = describe(QComboBox(), "Training recipe",
                               "Stable: G lr 1e-3, D lr 1e-4, label smoothing, instance noise and a moving average "
                               "of G (what trained the bundled model). Paper: G lr 0.0025, D lr 1e-5, which at "
                               "32^3 lets G overpower D within a few steps")
        for name, text in RECIPES:
            self.recipe.addItem(text, name)
        self.epochs = describe(QSpinBox(), "Epochs", "Train until this many epochs are complete")
        self.epochs.setRange(1, 10000)
        self.epochs.setValue(50)
        self.out = describe(QLineEdit(str(Path.cwd() / "runs" / "explorer")), "Run folder",
                            "Where checkpoints, metrics.jsonl and samples go; an existing run is shown and can be resumed")
        self.out.editingFinished.connect(self.watch_run)
        self.out_browse = describe(QPushButton("Browse\u2026"), "Choose run folder")
        self.out_browse.clicked.connect(self._choose_out)
        self.start_btn = describe(QPushButton("Start"), "Start training", "Start gan3d train in a separate process")
        self.stop_btn = describe(QPushButton("Stop"), "Stop training",
                                 "Ask the trainer to save and exit (SIGTERM); press again to kill it")
        self.resume_btn = describe(QPushButton("Resume"), "Resume training", "Continue the run from its latest.pt")
        self.use_btn = describe(QPushButton("Use this checkpoint"), "Use this run's checkpoint",
                                "Load the run's latest.pt into every view now (no restart)")
        self.start_btn.clicked.connect(lambda: self.start(resume=False))
        self.resume_btn.clicked.connect(lambda: self.start(resume=True))
        self.stop_btn.clicked.connect(self.stop)
        self.use_btn.clicked.connect(self.use_checkpoint)
        self.status = QLabel("Not running. Choose a data file and press Start, or set the run folder to an "
                             "existing run (one made by <code>gan3d train</code>) to watch its curves.")
        self.status.setWordWrap(True)
        self.errors = describe(QPlainTextEdit(), "Trainer error output", "The last lines the trainer wrote to stderr")
        self.errors.setReadOnly(True)
        self.errors.setMaximumHeight(140)
        self.errors.setVisible(False)
        self.errors.setStyleSheet("background: #fde8e8; font-family: monospace;")
        form = QFormLayout()
        form.addRow("Data", hbox(self.data, self.data_browse))
        form.addRow("Classes", self.classes)
        form.addRow("Profile", self.profile)
        form.addRow("Recipe", self.recipe)
        form.addRow("Epochs", self.epochs)
        form.addRow("Run folder", hbox(self.out, self.out_browse))
        self.previews = [Thumb(f"Preview sample {i + 1}", 64, largest=True) for i in range(PREVIEWS)]
        for i, th in enumerate(self.previews):
            th.setToolTip(f"Preview sample {i + 1}: click to list its nearest training shapes")
            th.setCheckable(True)
            th.clicked.connect(lambda _c=False, i=i: self.choose_sample(i))
        self.previews[0].setChecked(True)
        self.left = QWidget()
        self.left.setLayout(vbox(form, hbox(self.start_btn, self.stop_btn, self.resume_btn, 1), self.use_btn,
                                 self.status, self.errors, QLabel("<b>Newest samples</b>"),
                                 hbox(*self.previews[:4], 1, spacing=2), hbox(*self.previews[4:], 1, spacing=2), 1))
        self.left.setMaximumWidth(460)

    def _build_plots(self) -> None:
        self.plots: Any = None  # made when the tab is first shown or has curves to draw (_make_plots)
        self._plots_slot = QWidget()
        self._box = hbox(self.left, self._plots_slot, margins=6)
        self.setLayout(self._box)

    def _make_plots(self) -> None:
        """The curves, in place of the empty slot (once): a hidden tab at launch, and pyqtgraph's import slowed
        the first shape (explorer.widgets.pyqtgraph)."""
        if self.plots is not None:
            return
        pg = pyqtgraph()
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setAccessibleName("Training curves")
        self.plots.setToolTip("Losses, discriminator accuracy and update rate, from metrics.jsonl")
        p1 = self.plots.addPlot(row=0, col=0, title="Losses")
        p1.addLegend(offset=(-10, 10), brush=(255, 255, 255, 210))
        self.g_curve = p1.plot(pen=pg.mkPen("#2563eb", width=1.5), name="G loss")
        self.d_curve = p1.plot(pen=pg.mkPen("#dc2626", width=1.5), name="D loss")
        p2 = self.plots.addPlot(row=1, col=0, title="Discriminator accuracy and update rate")
        p2.addLegend(offset=(-10, -10), brush=(255, 255, 255, 210))
        p2.setYRange(0, 1)
        p2.addLine(y=0.8, pen=pg.mkPen("#999", style=Qt.PenStyle.DashLine))
        self.acc_curve = p2.plot(pen=pg.mkPen("#059669", width=1.5), name="D accuracy")
        self.rate_curve = p2.plot(pen=pg.mkPen("#d97706", width=1.5), name="D updated (last 50)")
        p2.setXLink(p1)
        for p in (p1, p2):
            p.showGrid(x=True, y=True, alpha=0.2)
            p.setLabel("bottom", "step")
        self._box.replaceWidget(self._plots_slot, self.plots)
        self._plots_slot.deleteLater()
        self._draw_curves()

    def _draw_curves(self) -> None:
        if self.plots is None:
            return  # drawn when the plots are made
        c = self.curves
        self.g_curve.setData(c.step, c.g_loss)
        self.d_curve.setData(c.step, c.d_loss)
        self.acc_curve.setData(c.step, c.d_acc)
        self.rate_curve.setData(c.step, c.d_rate)

    def showEvent(self, event: Any) -> None:  # noqa: N802
        super().showEvent(event)
        self._make_plots()

    # -- process -------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def command(self, resume: bool) -> list[str]:
        args = ["-m", "gan_core.cli", "train", "--data", self.data.text().strip(), "--out", self.out.text().strip(),
                "--profile", self.profile.currentText(), "--recipe", self.recipe.currentData(),
                "--epochs", str(self.epochs.value())]
        picked = [self.classes.item(i).text() for i in range(self.classes.count())
                  if self.classes.item(i).checkState() == Qt.CheckState.Checked]
        if picked:
            args += ["--classes", ",".join(picked)]
        return args + (["--resume"] if resume else [])

    def start(self, resume: bool = False) -> None:
        if not self.data.text().strip():
            self.ctx.notifier.warning("choose a training data file first")
            return
        self.start_process(sys.executable, self.command(resume))

    def start_process(self, program: str, args: list[str]) -> None:
        """Run ``program args`` as the trainer (tests pass a tiny fake)."""
        if self.running:
            self.ctx.notifier.warning("a training run is already going; stop it first")
            return
        self.stderr.clear()
        self._stop_requested = False
        self._stderr_buf = ""
        self.errors.setVisible(False)
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.readyReadStandardOutput.connect(lambda: proc.readAllStandardOutput())
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._process_error)
        self.process = proc
        self.watch_run()
        proc.start(program, args)
        self.status.setText(f"Starting: {Path(program).name} {' '.join(args)}")
        self.poll_timer.start()
        self._sync_buttons()

    def stop(self) -> None:
        if not self.running:
            return
        assert self.process is not None
        if self._stop_requested:
            self.process.kill()
            return
        self._stop_requested = True
        self.process.terminate()  # SIGTERM: the trainer finishes its step, saves latest.pt and exits
        self.status.setText("Stopping: the trainer saves its checkpoint, then exits\u2026")
        self.stop_btn.setText("Kill")

    def _read_stderr(self) -> None:
        assert self.process is not None
        text = self._stderr_buf + bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        parts = text.replace("\r", "\n").split("\n")
        self._stderr_buf = parts.pop()
        self.stderr.extend(p for p in parts if p.strip())

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_stderr()
        if self._stderr_buf.strip():
            self.stderr.append(self._stderr_buf)
        self.poll()
        stopping, self._stop_requested = self._stop_requested, False
        if code == 0 and status == QProcess.ExitStatus.NormalExit:
            self.status.setText(f"{'Stopped' if stopping else 'Finished'}. {self.curves.summary()}")
        elif stopping:
            self.status.setText(f"Stopped (killed). {self.curves.summary()}")
        else:
            how = "crashed" if status == QProcess.ExitStatus.CrashExit else f"exited with code {code}"
            self.status.setText(f"<b style='color:#b91c1c'>Trainer {how}.</b> Its last messages are below.")
            last = self.stderr[-1] if self.stderr else f"no error output; last progress: {self.curves.summary()}"
            self.errors.setPlainText("\n".join(self.stderr) or last)  # a killed trainer says nothing: show its log's end
            self.errors.setVisible(True)
            self.ctx.notifier.error(f"training {how}: {last}")
        self.poll_timer.stop()
        self._sync_buttons()

    def _process_error(self, err: QProcess.ProcessError) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self.status.setText("The trainer could not be started.")
            self.ctx.notifier.error(f"could not start the trainer: {self.process.errorString() if self.process else err}")
            self._sync_buttons()

    def _sync_buttons(self) -> None:
        run = self.running
        self.start_btn.setEnabled(not run)
        self.resume_btn.setEnabled(not run and (Path(self.out.text()) / "latest.pt").exists())
        self.stop_btn.setEnabled(run)
        if not run:
            self.stop_btn.setText("Stop")
        self.use_btn.setEnabled((Path(self.out.text()) / "latest.pt").exists())

    # -- metrics and samples -------------------------------------------------------------------------------
    def watch_run(self) -> None:
        """Show the run in the run folder (its curves so far), and follow it."""
        path = Path(self.out.text().strip()) / "metrics.jsonl"
        if self.tail is None or self.tail.path != path:
            self.tail = MetricsTail(path)
            self.curves = Curves()
            self._samples_mtime = 0.0
        self.poll()
        self._sync_buttons()

    def poll(self) -> None:
        if self.tail is None:
            return
        records = self.tail.poll()
        if self.tail.restarted:
            self.curves = Curves()
        if records:
            self.curves.add(records)
            self._make_plots()  # (a run watched from a hidden tab)
            self._draw_curves()
            c = self.curves
            if self.running:
                self.status.setText(f"Running \u00b7 {c.summary()}")
            else:
                self.status.setText(f"Watching {self.tail.path.parent.name}: {c.summary()}")
        self._load_samples()
        self._sync_buttons()

    def _load_samples(self) -> None:
        path = Path(self.out.text().strip()) / "samples" / "latest.npz"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return
        if mtime == self._samples_mtime:
            return
        try:
            with np.load(path, allow_pickle=False) as npz:
                vox = np.asarray(npz["voxels"][:PREVIEWS], np.float32)  # (N, R, R, R)
            if vox.ndim != 4:
                raise ValueError(f"voxels of shape {vox.shape} are not a stack of grids")
        except Exception:  # noqa: BLE001 (torn while the trainer replaces it, or not a sample file: try at the next poll)
            return
        self._samples_mtime = mtime
        for th, v in zip(self.previews, vox):
            th.set_voxels(v)
        self.sampleChosen.emit()  # the chosen slot shows a new sample

    def choose_sample(self, i: int) -> None:
        """Make preview ``i`` the one the neighbours panel follows."""
        self.chosen = i
        for j, th in enumerate(self.previews):
            th.setChecked(j == i)
        self.sampleChosen.emit()

    def chosen_sample(self) -> tuple[np.ndarray, str] | None:
        """(voxels, label) of the chosen preview sample, or None while there is none."""
        vox = self.previews[self.chosen].voxels
        return None if vox is None else (np.asarray(vox, np.float32), f"preview sample {self.chosen + 1}")

    def use_checkpoint(self) -> None:
        ckpt = Path(self.out.text().strip()) / "latest.pt"
        load = self.ctx.actions.get("load_checkpoint")
        if load is not None:
            load(str(ckpt))

    # -- form helpers --------------------------------------------------------------------------------------
    def _choose_data(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Training data", "", "Voxel sets (*.npz *.h5);;All files (*)")
        if name:
            self.data.setText(name)
            self._load_classes()

    def _choose_out(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Run folder", self.out.text())
        if name:
            self.out.setText(name)
            self.watch_run()

    def _load_classes(self) -> None:
        self.classes.clear()
        path = Path(self.data.text().strip())
        try:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as npz:
                    if "classes" not in npz.files:
                        return  # a set without class names is one class: nothing to pick
                    raw = np.asarray(npz["classes"])
            elif path.suffix == ".h5":
                import h5py

                with h5py.File(path, "r") as h5:
                    if "classes" not in h5:
                        return
                    raw = np.asarray(h5["classes"][()])
            else:
                return
            if raw.ndim != 1:
                raise ValueError(f"'classes' has shape {raw.shape}, not a list of names")
            names = [c.decode() if isinstance(c, bytes) else str(c) for c in raw]
        except Exception as e:  # noqa: BLE001 (BadZipFile, EOFError, OSError, KeyError...: any damage is a message)
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
            self.ctx.notifier.warning(f"{path.name}: cannot read its class names ({type(e).__name__}: {reason})")
            return
        for n in names:
            item = QListWidgetItem(n)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.classes.addItem(item)

    def shutdown(self, wait_ms: int = 15000) -> None:
        """On app exit: ask a running trainer to save and exit, and wait a while for it."""
        self.poll_timer.stop()
        if self.running and self.process is not None:
            self.process.terminate()
            if not self.process.waitForFinished(wait_ms):
                self.process.kill()
                self.process.waitForFinished(2000)

    def close_views(self) -> None:
        self.shutdown()
