#!/usr/bin/env bash
# Set up (idempotent), check the layering (lint-imports) and the types (mypy), and run the test suite: GUI-free
# and offscreen-Qt tests first, then the tests that render 3D under a virtual X display. Extra arguments go to both pytest runs (e.g. -x, -k name); a marker
# expression (-m EXPR, e.g. -m slow) replaces "not slow" in both, so each test runs once, in the right run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
PYTEST=(.venv/bin/python -m pytest -p no:cacheprovider)

run() {  # pytest's exit 5 ("no tests collected") is a failure of ours in the default run, never a pass
    local rc=0
    "$@" || rc=$?
    if [ "$rc" -eq 5 ] && [ "$MARKS" = "not slow" ]; then echo "test.sh: no tests were collected by: $*" >&2; return 1; fi
    if [ "$rc" -eq 5 ]; then echo "test.sh: -m $MARKS selects no tests in this run" >&2; return 0; fi
    return "$rc"
}

MARKS="not slow"
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        -m) MARKS="$2"; shift 2 ;;
        -m*) MARKS="${1#-m}"; shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done

echo "== import contracts (lint-imports) and types (mypy), both configured in pyproject.toml ==" >&2
.venv/bin/lint-imports --no-logo --cache-dir .venv/.import_linter_cache
.venv/bin/mypy
echo "== tests (offscreen Qt) ==" >&2
QT_QPA_PLATFORM=offscreen run "${PYTEST[@]}" -m "not render and ($MARKS)" ${ARGS[@]+"${ARGS[@]}"}
echo "== tests that render (Xvfb) ==" >&2
unset QT_QPA_PLATFORM
run xvfb-run -a -s "-screen 0 1920x1200x24" "${PYTEST[@]}" -m "render and ($MARKS)" ${ARGS[@]+"${ARGS[@]}"}
