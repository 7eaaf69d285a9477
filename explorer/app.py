"""`gan3d-explorer`: the desktop app's entry point.

    gan3d-explorer [--checkpoint CKPT|NAME] [--bank BANK] [--session FILE]
                   [--screenshot PATH --quit-after SECONDS]

Without --checkpoint it opens the bundled default model; with none installed, an untrained fast32
generator and a banner saying so. A --checkpoint that cannot be opened is one error naming the file, and
the app exits 1 (never an untrained stand-in). --screenshot waits until every visible view shows a shape,
writes a PNG of the whole window and exits 0 (1 if no shape appeared within --quit-after seconds).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

T_START = time.perf_counter()
log = logging.getLogger("explorer")
WORKSPACES = ("interpolate", "arithmetic", "reconstruct", "training")  # explorer.window.WORKSPACES (not imported
PANELS = ("map", "directions", "units")  # here: --help must not wait for Qt)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="gan3d-explorer", description="Explore a 3D-GAN: interpolate, combine, retrieve, reconstruct, train.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: gan3d-explorer --checkpoint runs/chair/latest.pt --bank runs/chair/bank.h5")
    p.add_argument("--checkpoint", help="a checkpoint (.pt) or the name of a bundled model")
    p.add_argument("--bank", help="a feature bank (.h5) for nearest-neighbour retrieval")
    p.add_argument("--session", help="a saved session (.json) to open")
    p.add_argument("--profile", default="fast32", help="profile of the untrained generator used when no model exists")
    p.add_argument("--tab", choices=[*WORKSPACES, *PANELS], default="interpolate",
                   help="workspace shown first, or a side panel shown large: map (the latent map in its own "
                        "window), directions or units (what D's units respond to)")
    p.add_argument("--screenshot", help="save a PNG of the window once shapes are shown, then exit")
    p.add_argument("--quit-after", type=float, default=None,
                   help="exit after this many seconds, counted from when the model is loaded")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the generator (default: half the cores, at least 1; see set_threads)")
    p.add_argument("--verbose", action="store_true", help="log debug messages")
    args = p.parse_args(argv)
    if args.quit_after is not None and args.quit_after <= 0:
        p.error("--quit-after must be positive")
    return args


def setup_logging(verbose: bool) -> Path | None:
    from PyQt6.QtCore import QStandardPaths

    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(fmt)
    err.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.addHandler(err)
    # pyvista imports matplotlib, whose "building the font cache" warning (a fresh cache folder) would be a line
    # on stderr beside the app's own; the app draws nothing with matplotlib
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    folder = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation) or ".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(folder / "explorer.log", encoding="utf-8")
        fh.setFormatter(fmt)
        root.addHandler(fh)
        return folder / "explorer.log"
    except OSError:
        return None


def set_threads(n: int | None) -> int:
    """Torch intra-op threads for generation. Half the cores by default: the GUI thread and VTK need a core,
    and a trainer started from the Training tab needs the rest. On a loaded 2-core machine, 2 threads made a
    fast32 generate 10x slower than 1 (832 ms vs 80 ms median, OpenMP threads waiting for each other)."""
    import os

    import torch

    n = n if n and n > 0 else max(1, (os.cpu_count() or 2) // 2)
    torch.set_num_threads(n)
    return n


def warm_up() -> None:
    """Import torch's optimiser machinery on a background thread: the first Model.project (picking a
    training shape, clicking a neighbour) builds an Adam optimiser, whose first use imports torch._dynamo,
    2 to 10 s on a busy 2-core machine, which would otherwise stall that first click."""
    def work() -> None:
        try:
            import torch

            torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        except Exception:  # noqa: BLE001 (only a speed-up)
            log.debug("warm-up failed", exc_info=True)

    threading.Thread(target=work, name="gan3d-warm-up", daemon=True).start()


def install_excepthook(notify: Any) -> None:
    """Uncaught exceptions (a slot, a thread) become a message in the window and a log entry, never a crash."""
    from gan_core.errors import Gan3dError

    def hook(tp: type[BaseException], val: BaseException, tb: Any) -> None:
        if issubclass(tp, KeyboardInterrupt):
            sys.__excepthook__(tp, val, tb)
            return
        if isinstance(val, Gan3dError):
            notify(str(val))
            return
        log.error("uncaught exception", exc_info=(tp, val, tb))
        notify(f"internal error: {tp.__name__}: {val} (details in the log)")

    sys.excepthook = hook
    threading.excepthook = lambda a: hook(a.exc_type, a.exc_value, a.exc_traceback)  # type: ignore[arg-type]


class ModelError(Exception):
    """The model asked for with --checkpoint cannot be opened: the app stops with this one line."""


def checkpoint_error(spec: str, exc: BaseException) -> ModelError:
    """One line naming the file (or bundled name) and why it cannot be opened."""
    reason = str(exc)
    return ModelError(f"gan3d-explorer: cannot open --checkpoint {spec}: "
                      f"{reason.replace(f'{spec}: ', '', 1) if reason.startswith(f'{spec}:') else reason}")


def check_checkpoint_arg(spec: str | None) -> None:
    """Before any window: a --checkpoint that is neither a file nor a bundled model's name (ModelError)."""
    from gan_core.errors import Gan3dError
    from gan_core.runtime import list_models

    if not spec or Path(spec).exists():
        return
    if Path(spec).suffix.lower() == ".pt":
        raise checkpoint_error(spec, FileNotFoundError("no such file"))
    try:
        names = [m.name for m in list_models()]
    except Gan3dError as e:
        raise checkpoint_error(spec, e) from None
    if spec not in names:
        known = f"; bundled models: {', '.join(names)}" if names else ""
        raise checkpoint_error(spec, FileNotFoundError(f"no such file, and no bundled model of that name{known}"))


def initial_model(args: argparse.Namespace) -> tuple[Any, str | None]:
    """(model, banner): the checkpoint asked for, else the bundled default, else an untrained one (with a banner
    saying so). A --checkpoint that cannot be opened raises ModelError: an explicit model is never replaced by
    an untrained one."""
    from gan_core.errors import Gan3dError
    from gan_core.runtime import load_model

    if args.checkpoint:
        try:
            return load_model(args.checkpoint), None
        except Gan3dError as e:
            raise checkpoint_error(args.checkpoint, e) from None
    try:
        return load_model(), None
    except Gan3dError:
        pass
    return load_model(profile=args.profile), ("No trained model installed: showing an untrained generator. Open "
                                              "a checkpoint (File > Open checkpoint) or train one in the Training tab.")


def report_fatal(text: str, interactive: bool) -> None:
    """The one error line on stderr; in an interactive session (a real display, no --screenshot) also a dialog,
    since an app started from a desktop menu has no terminal to show stderr."""
    print(text, file=sys.stderr)
    if interactive:
        from PyQt6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "3D-GAN Explorer", text.removeprefix("gan3d-explorer: "))


class ModelLoader:
    """:func:`initial_model` on a thread of its own, started before the window is built: reading the checkpoint
    and building the networks overlap the window's construction (pyvista's import most of all)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._model: tuple[Any, str | None] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._load, args=(args,), name="gan3d-load-model", daemon=True)
        self._thread.start()

    def _load(self, args: argparse.Namespace) -> None:
        try:
            self._model = initial_model(args)
        except BaseException as e:  # noqa: BLE001 (raised again on the GUI thread, in result())
            self._error = e

    def result(self) -> tuple[Any, str | None]:
        """(model, banner) once loaded; raises what loading raised (ModelError for a bad --checkpoint)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._model is not None
        return self._model


class AfterFirstShape:
    """Runs ``fn`` once the first shape is on screen (at once in a workspace without 3D views; at the latest
    after ``limit_s``). Opening the feature bank imports scikit-learn and reads the bank on a worker, which held
    the GIL while the first shapes were generated: 1.7 s of the launch."""

    def __init__(self, window: Any, fn: Callable[[], Any], limit_s: float = 10.0) -> None:
        from PyQt6.QtCore import QTimer

        self.window, self.fn, self.deadline = window, fn, time.perf_counter() + limit_s
        # the views found once: findChildren walks ~760 widgets (12 ms on a busy 2-core machine), and doing it on
        # every 50 ms poll took that time from making the first shape
        self.views = window.views()
        self.pending = True
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self._check)
        self.timer.start()

    def _check(self) -> None:
        visible = [v for v in self.views if v.isVisible()]
        if visible and not any(v.shown_count for v in visible) and time.perf_counter() < self.deadline:
            return
        self.timer.stop()
        self.pending = False
        self.fn()


class ScreenshotTask:
    """Waits until every visible view shows a shape and nothing is pending, then saves the window."""

    def __init__(self, app: Any, window: Any, path: str | None, quit_after: float | None,
                 deferred: AfterFirstShape | None = None) -> None:
        from PyQt6.QtCore import QTimer

        self.app, self.window, self.path, self.deferred = app, window, path, deferred
        self.views = window.views()  # once (see AfterFirstShape): the 3D views are made with the window
        self.first_shape_s: float | None = None
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self._check)
        self.timer.start()
        if quit_after is not None:
            QTimer.singleShot(int(quit_after * 1000), self._timeout)

    def ready(self) -> bool:
        views = [v for v in self.views if v.isVisible()]
        if self.window.ctx.busy or (self.deferred and self.deferred.pending):
            return False
        if not views:  # a workspace without 3D views (training): ready once the first work is done
            return time.perf_counter() - T_START > 2.0
        return all(v.settled() for v in views)

    def _check(self) -> None:
        if self.first_shape_s is None and any(v.shown_count for v in self.views):
            self.first_shape_s = time.perf_counter() - T_START
            log.warning("first shape on screen %.2f s after launch", self.first_shape_s)
        if self.path and self.ready():
            self.timer.stop()
            self.app.processEvents()
            ok = self.window.save_screenshot(self.path)
            first = ("no shape in this workspace" if self.first_shape_s is None
                     else f"first shape {self.first_shape_s:.2f} s after launch")
            print(f"screenshot: {self.path} ({'ok' if ok else 'FAILED'}); {first}", file=sys.stderr)
            self.app.exit(0 if ok else 1)
        elif not self.path and self.first_shape_s is not None:
            self.timer.stop()

    def _timeout(self) -> None:
        if self.path:
            self.window.save_screenshot(self.path)
            print(f"gan3d-explorer: no shape on screen within the time limit; saved {self.path} anyway",
                  file=sys.stderr)
            self.app.exit(1)
        else:
            self.app.exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from PyQt6.QtCore import QCoreApplication, QTimer
    from PyQt6.QtWidgets import QApplication

    if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "xcb"  # the 3D views are native X11 windows (pyvistaqt 0.11): XWayland
    QCoreApplication.setOrganizationName("gan3d")
    QCoreApplication.setApplicationName("explorer")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationDisplayName("3D-GAN Explorer")
    setup_logging(args.verbose)

    interactive = not args.screenshot and app.platformName() not in ("offscreen", "minimal")
    try:
        check_checkpoint_arg(args.checkpoint)  # a missing file fails before any window opens
    except ModelError as e:
        report_fatal(str(e), interactive)
        return 1

    from gan_core.runtime import bundled_bank_for

    from explorer.state import SessionState
    from explorer.window import MainWindow

    set_threads(args.threads)
    loading = ModelLoader(args)  # beside the window's construction
    state = SessionState()
    window = MainWindow(state)
    install_excepthook(window.ctx.notifier.error)
    window.show_workspace(args.tab)
    try:
        model, banner = loading.result()
    except ModelError as e:  # a file that is there but is no checkpoint (or a damaged one): no window shown
        window.shutdown()
        report_fatal(str(e), interactive)
        return 1
    if banner:
        window.banner.setText(banner)
        window.banner.setVisible(True)
    state.set_model(model)  # before show(): the views ask for their shapes as they are shown, and the worker
    window.show()  # generates them while the next views make their interactors
    app.processEvents()
    bank = args.bank or bundled_bank_for(model)  # a bundled model opens with its bank: neighbours from the start
    deferred = AfterFirstShape(window, lambda: window.open_bank(str(bank))) if bank else None
    if args.session:
        window.open_session(args.session)
    task = ScreenshotTask(app, window, args.screenshot, args.quit_after, deferred)  # noqa: F841 (kept alive)
    if not args.screenshot:
        QTimer.singleShot(3000, warm_up)
    try:
        rc = app.exec()
    finally:
        window.shutdown()
    return int(rc)


def run() -> None:
    """The console entry: :func:`main`, then end the process without PyQt's exit-time sweep.

    At interpreter exit PyQt deletes every parentless Qt object Python still owns while it walks its own table
    of wrappers; deleting the window removes its children's wrappers from that table mid-walk, which
    segfaults now and then (about one exit in ten, offscreen) after everything was saved and reported. The
    window has shut down by now (workers joined, views closed, files written atomically), so flush and leave.
    """
    rc = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


if __name__ == "__main__":
    run()
