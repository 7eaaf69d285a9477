"""Coverage-guided fuzzing of one reader with atheris (libFuzzer), seeded with a valid file of its kind.

    python benchmarks/fuzz_atheris.py KIND [-max_total_time=60] [other libFuzzer flags]

KIND is one of tests/reliability_fuzz.py's kinds (binvox, npy, npz, h5, mat, mat73, off, obj, stl,
stl-ascii, ply, ply-ascii, set-npz, set-h5, checkpoint, bank, z-file). Any exception other than a one-line
Gan3dError is a finding: libFuzzer stops and writes the input as crash-<hash>. atheris is in the dev extra;
the pytest suite does the same with hypothesis (tests/test_reliability_fuzz.py) and needs no atheris.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import atheris  # noqa: E402

with atheris.instrument_imports(include=["gan_core"]):  # the readers are imported lazily: import them here
    import gan_core.checkpoint  # noqa: F401
    import gan_core.commands.interpolate  # noqa: F401
    import gan_core.data.binvox  # noqa: F401
    import gan_core.data.dataset  # noqa: F401
    import gan_core.data.importers  # noqa: F401
    import gan_core.data.mesh_readers  # noqa: F401
    import gan_core.data.voxelize  # noqa: F401
    import gan_core.features  # noqa: F401
    from gan_core.errors import Gan3dError
    from tests import reliability_fuzz as fz


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in fz.KINDS:
        sys.exit(f"usage: {sys.argv[0]} KIND [libFuzzer flags]; KIND in {', '.join(fz.KINDS)}")
    kind = sys.argv[1]
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{kind}-"))
    suffix, seed = fz.seeds(work / "seeds")[kind]
    corpus = work / "corpus"
    corpus.mkdir()
    (corpus / f"seed{suffix}").write_bytes(seed)
    target = work / f"input{suffix}"

    def one_input(data: bytes) -> None:
        target.write_bytes(data)
        try:
            fz.load(kind, target)
        except Gan3dError as e:
            if "\n" in str(e):
                raise AssertionError(f"multi-line error message: {e!r}") from None

    atheris.Setup([sys.argv[0], *sys.argv[2:], str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
