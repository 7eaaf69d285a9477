#!/usr/bin/env bash
# Idempotent setup: system packages (Debian), a .venv in the repo, torch first, then the project.
# Sourced by scripts/app.sh and scripts/test.sh; safe to run again (a second run takes seconds).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SYSTEM_PACKAGES=(xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libgl1 libegl1
                 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libdbus-1-3
                 libfontconfig1 libxrender1 libosmesa6)
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
    missing=()
    for p in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        echo "setup: installing system packages: ${missing[*]}" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY="$ROOT/.venv/bin/python"

# torch before everything else: a plain 'torch' requirement would pull a multi-GB CUDA build.
# GAN3D_TORCH overrides the spec (e.g. GAN3D_TORCH="torch --index-url ..." for a GPU build).
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
    echo "setup: installing torch" >&2
    # shellcheck disable=SC2086
    "$VPY" -m pip install -q ${GAN3D_TORCH:-torch==2.13.0}
fi

# Reinstall the project only when its declaration changed.
STAMP=.venv/.gan3d-installed
HASH="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
    echo "setup: installing gan3d-explorer and its dependencies" >&2
    "$VPY" -m pip install -q --upgrade pip >/dev/null
    "$VPY" -m pip install -q -e ".[dev]"
    echo "$HASH" > "$STAMP"
fi
