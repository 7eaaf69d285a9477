#!/usr/bin/env bash
# Set up (idempotent) and run the test suite: GUI-free and offscreen-Qt tests first, then the tests that
# render 3D under a virtual X display. Extra arguments go to both pytest runs (e.g. -x, -k name).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
PYTEST=(.venv/bin/python -m pytest -p no:cacheprovider)

run() {  # pytest's exit 5 ("no tests collected") is a failure of ours, never a pass
    local rc=0
    "$@" || rc=$?
    if [ "$rc" -eq 5 ]; then echo "test.sh: no tests were collected by: $*" >&2; return 1; fi
    return "$rc"
}

echo "== tests (offscreen Qt) ==" >&2
QT_QPA_PLATFORM=offscreen run "${PYTEST[@]}" -m "not render and not slow" "$@"
echo "== tests that render (Xvfb) ==" >&2
unset QT_QPA_PLATFORM
run xvfb-run -a -s "-screen 0 1920x1200x24" "${PYTEST[@]}" -m "render and not slow" "$@"
