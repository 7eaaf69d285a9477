#!/usr/bin/env bash
# Mutation testing of the maths modules (issue 24): benchmarks/mutation.py under mutmut, one worker, at low
# priority. Not part of the default test run: it takes about an hour on 2 cores. Arguments go to
# benchmarks/mutation.py (--modules, --tests-ref, --json; --help lists them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
"$PY" -c "import mutmut" 2>/dev/null || "$PY" -m pip install --quiet "mutmut==3.8.1"
exec nice -n 10 "$PY" "$ROOT/benchmarks/mutation.py" "$@"
