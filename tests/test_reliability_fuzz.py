"""Bounded mutation fuzzing of every reader (hypothesis drives and shrinks the mutations): a damaged file
either loads or is a one-line Gan3dError, within seconds, never another exception.

The default run tries a few dozen mutants per reader (~10 s in all); ``pytest -m slow`` runs 400 per reader.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability_fuzz import KINDS, OPS, check, mutate, seeds

ops = st.lists(st.tuples(st.sampled_from(OPS), st.floats(0, 1, exclude_max=True), st.integers(0, 2**16)),
               min_size=1, max_size=6)


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory) -> dict[str, tuple[str, bytes]]:
    return seeds(tmp_path_factory.mktemp("seeds"))


def _fuzz(kind: str, seed_files, directory: Path, mutations) -> None:
    suffix, data = seed_files[kind]
    outcome, detail = check(kind, mutate(data, mutations), directory / f"mutant{suffix}")
    assert outcome in ("ok", "clean"), f"{kind}: {outcome}: {detail}"


_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=15, **_SETTINGS)
@given(mutations=ops)
def test_fuzz_short(kind, seed_files, tmp_path, mutations):
    _fuzz(kind, seed_files, tmp_path, mutations)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=400, **{**_SETTINGS, "derandomize": False})
@given(mutations=ops)
def test_fuzz_long(kind, seed_files, tmp_path, mutations):
    _fuzz(kind, seed_files, tmp_path, mutations)


def test_seeds_load(seed_files, tmp_path):
    for kind, (suffix, data) in seed_files.items():
        assert check(kind, data, tmp_path / f"seed{suffix}") == ("ok", ""), kind


# Mutants the fuzzer found, kept as regressions (damaged HDF5 metadata and chunks used to escape as
# OSError / KeyError / RuntimeError from h5py).
FOUND = [
    ("set-h5", [("set", 0.27151527822008914, 1210)]),
    ("set-h5", [("int32", 0.7857009477012714, 65382), ("int32", 0.03119775075533493, 64013),
                ("duplicate", 0.42321924913551, 60071)]),
    ("bank", [("int32", 0.05697789087336247, 35448)]),
    ("bank", [("int32", 0.9952998033878611, 28774), ("int64", 0.6209088984199513, 56258),
              ("set", 0.687914521389034, 12708)]),
]


@pytest.mark.parametrize("kind, mutations", FOUND, ids=[f"{k}-{i}" for i, (k, _) in enumerate(FOUND)])
def test_found_mutants(kind, mutations, seed_files, tmp_path):
    _fuzz(kind, seed_files, tmp_path, mutations)


_HANG = """
import sys, tempfile
from pathlib import Path
from tests.reliability_fuzz import check, mutate, seeds
d = Path(tempfile.mkdtemp())
for kind in ("bank", "set-h5"):
    suffix, data = seeds(d)[kind]
    print(kind, *check(kind, mutate(data, [("int64", 0.6229408781045257, 10017)]), d / f"m{suffix}"), flush=True)
"""


def test_a_damaged_string_heap_is_refused_not_hung_on():
    """Found by fuzzing: a zeroed heap object index in a bank's global heap (where h5py keeps string
    attributes) became a free-space object of size 0 and HDF5 looped for good reading the attribute; a
    damaged size made it allocate 4.5 GB and fail after 40 s. Run in a subprocess, so a hang fails."""
    import subprocess
    import sys

    from tests.reliability_train import ROOT

    out = subprocess.run([sys.executable, "-c", _HANG], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("bank clean ") and "damaged HDF5 file" in lines[0], lines
    assert lines[1].split()[1] in ("clean", "ok"), lines
