"""The generation worker: newest request wins, stale results are dropped (deterministically, with a fake
model and events: no sleeps), batches, errors as messages; and the job runner."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from gan_core.errors import BadInputError
from explorer.workers import GenerationService, JobRunner


class FakeModel:
    """generate() records its inputs and can be held at a gate, so a test decides when it finishes."""

    profile = SimpleNamespace(z_dim=4, resolution=8, name="fake")

    def __init__(self, hold: bool = False, error: Exception | None = None) -> None:
        self.calls: list[np.ndarray] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.hold = hold
        self.error = error

    def generate(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(z)
        self.calls.append(z.copy())
        self.entered.set()
        if self.hold:
            assert self.gate.wait(10), "test never opened the gate"
            self.hold = False
        if self.error is not None:
            raise self.error
        out = np.zeros((len(z), 8, 8, 8), np.float32)
        out[:, 2:6, 2:6, 2:6] = 1.0  # a cube
        return out


@pytest.fixture
def service(qtbot):
    svc = GenerationService()
    yield svc
    svc.shutdown()


def z(v: float) -> np.ndarray:
    return np.full(4, v, np.float32)


def test_newest_request_wins_and_stale_work_is_dropped(qtbot, service):
    fake = FakeModel(hold=True)
    service.set_model(fake)
    got = []
    service.subscribe("current", got.append)
    id1 = service.request("current", z(1))
    assert fake.entered.wait(10)  # the worker is inside generate(z1)
    id2 = service.request("current", z(2))  # pending...
    id3 = service.request("current", z(3))  # ...and replaced before it ever ran
    assert id1 < id2 < id3
    fake.gate.set()
    qtbot.waitUntil(lambda: service.idle and not service.busy and bool(got), timeout=10000)
    assert [r.id for r in got] == [id3]
    np.testing.assert_array_equal(got[0].z, z(3))
    assert got[0].mesh is not None and got[0].mesh.n_points > 0  # meshed on the worker
    assert [c[0, 0] for c in fake.calls] == [1.0, 3.0]  # z2 was never generated
    assert service.dropped >= 1


def test_result_superseded_after_the_worker_checked_is_dropped_on_delivery(qtbot, service):
    fake = FakeModel()
    service.set_model(fake)
    got = []
    service.subscribe("t", got.append)
    in_job, release = threading.Event(), threading.Event()

    def slow_job(model, vox):
        in_job.set()
        assert release.wait(10)
        return "first"

    service.request("t", z(1), job=slow_job)
    assert in_job.wait(10)  # past the worker's staleness check
    newest = service.request("t", z(2), job=lambda m, v: "second")
    release.set()
    qtbot.waitUntil(lambda: service.idle and not service.busy and bool(got), timeout=10000)
    assert [(r.id, r.extra) for r in got] == [(newest, "second")]


def test_targets_do_not_supersede_each_other(qtbot, service):
    service.set_model(FakeModel())
    got = []
    for t in ("A", "B"):
        service.subscribe(t, got.append)
    service.request("A", z(1))
    service.request("B", z(2))
    qtbot.waitUntil(lambda: len(got) == 2, timeout=10000)
    assert sorted(r.target for r in got) == ["A", "B"]


def test_a_path_is_generated_as_one_batch_without_meshes(qtbot, service):
    fake = FakeModel()
    service.set_model(fake)
    with qtbot.waitSignal(service.resultReady, timeout=10000) as sig:
        service.request("film", np.stack([z(i) for i in range(7)]), display="none")
    res = sig.args[0]
    assert res.voxels.shape == (7, 8, 8, 8) and res.mesh is None
    assert len(fake.calls) == 1 and fake.calls[0].shape == (7, 4)


def test_voxel_display_gives_cubes(qtbot, service):
    service.set_model(FakeModel())
    with qtbot.waitSignal(service.resultReady, timeout=10000) as sig:
        service.request("A", z(0), display="voxels")
    assert sig.args[0].mesh.n_cells == 6 * 4 * 4  # a 4^3 block shows 16 quads per side


@pytest.mark.parametrize("error, message", [
    (BadInputError("z contains NaN"), "z contains NaN"),
    (RuntimeError("boom"), "internal error: RuntimeError: boom"),
])
def test_errors_arrive_as_one_line_messages(qtbot, service, error, message):
    service.set_model(FakeModel(error=error))
    with qtbot.waitSignal(service.failed, timeout=10000) as sig:
        service.request("A", z(0))
    assert sig.args[0] == "A"
    assert sig.args[1].startswith(message)
    assert "Traceback" not in sig.args[1]


def test_switching_model_makes_pending_work_stale(qtbot, service):
    old = FakeModel(hold=True)
    service.set_model(old)
    got = []
    service.subscribe("A", got.append)
    service.request("A", z(1))
    assert old.entered.wait(10)
    new = FakeModel()
    service.set_model(new)
    rid = service.request("A", z(2))
    old.gate.set()
    qtbot.waitUntil(lambda: bool(got) and service.idle, timeout=10000)
    assert [r.id for r in got] == [rid] and got[0].model is new


def test_job_runner_reports_progress_results_and_errors(qtbot):
    jobs = JobRunner()
    progress, done, errors = [], [], []
    jobs.progress.connect(lambda label, d, t: progress.append((d, t)))

    def work(n, report):
        for i in range(n):
            report(i + 1, n)
        return n * 2

    jobs.start("Counting", work, 3, on_done=done.append, progress=True)
    qtbot.waitUntil(lambda: not jobs.busy and bool(done), timeout=10000)
    assert done == [6] and (3, 3) in progress

    def fail():
        raise BadInputError("no such shape")

    with qtbot.waitSignal(jobs.failed, timeout=10000) as sig:
        jobs.start("Loading", fail, on_error=errors.append)
    assert sig.args[0] == "Loading: no such shape" and errors == ["Loading: no such shape"]
    qtbot.waitUntil(lambda: not jobs.busy, timeout=10000)


def test_job_runner_abort_stops_at_the_next_progress_report(qtbot):
    jobs = JobRunner()
    started, finished = threading.Event(), []

    def long(report):
        started.set()
        for i in range(10_000):
            report(i, 10_000)
            threading.Event().wait(0.001)
        finished.append(True)

    with qtbot.waitSignal(jobs.failed, timeout=10000) as sig:
        jobs.start("Projecting", long, progress=True)
        assert started.wait(10)
        jobs.abort()
    assert sig.args[0] == "Projecting: cancelled" and not finished
    qtbot.waitUntil(lambda: not jobs.busy, timeout=10000)


def test_background_work_waits_for_the_views_and_is_never_busy(qtbot, service):
    fake = FakeModel(hold=True)
    service.set_model(fake)
    service.request("A", z(1))
    assert fake.entered.wait(10)  # the worker is inside generate(z1)
    service.request("path", np.stack([z(5), z(6), z(7)]), background=True)
    service.request("B", z(2))
    fake.gate.set()
    qtbot.waitUntil(lambda: len(fake.calls) == 3 and service.idle and not service.busy, timeout=10000)
    assert [c[0, 0] for c in fake.calls] == [1, 2, 5]  # B went before the background batch
    service.request("path", np.stack([z(8), z(9)]), background=True)
    assert not service.busy


def test_a_background_batch_fills_the_cache_that_views_read_without_the_worker(qtbot, service):
    fake = FakeModel()
    service.set_model(fake)
    got = []
    service.subscribe("path", got.append)
    service.resultReady.connect(got.append)
    service.request("path", np.stack([z(1), z(2)]), background=True)
    qtbot.waitUntil(lambda: bool(got) and service.idle, timeout=10000)
    assert len(got) == 1  # to its subscriber only: no resultReady (the status bar's generation time)
    hit = service.cached("current", z(2))
    assert hit is not None and hit.mesh.n_points > 0 and hit.voxels.shape == (8, 8, 8)
    assert service.cached("current", z(3)) is None  # never generated
    assert service.cached("current", z(2), display="voxels") is None  # meshed as a smooth surface only
    service.set_model(FakeModel())
    assert service.cached("current", z(2)) is None  # another model's shapes


def test_cancelling_a_pending_request_ends_busy(qtbot, service):
    fake = FakeModel()
    service.set_model(fake)
    with service._cond:  # the worker cannot take B before it is cancelled (e.g. shown from the cache)
        service.request("B", z(2))
        assert service.busy
        service.cancel("B")
    assert not service.busy
    assert fake.calls == [] and service.idle and not service.busy


def test_job_runner_shutdown_waits_for_running_jobs_and_drops_their_results(qtbot):
    """A job that cannot be aborted (no progress reports) still finishes before shutdown returns, and what it
    delivers afterwards reaches no panel: the window it was for is gone."""
    jobs = JobRunner()
    started, finished, done, errors = threading.Event(), [], [], []

    def slow():
        started.set()
        threading.Event().wait(0.5)
        finished.append(True)
        return 1

    def failing():
        threading.Event().wait(0.3)
        raise BadInputError("late")

    jobs.start("Slow", slow, on_done=done.append)
    jobs.start("Failing", failing, on_error=errors.append)
    assert started.wait(10)
    jobs.shutdown(timeout=10)
    assert finished == [True]  # drained, not left running into interpreter exit
    qtbot.wait(200)  # the queued returned / errored signals arrive now
    assert done == [] and errors == []
