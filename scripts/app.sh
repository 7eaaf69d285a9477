#!/usr/bin/env bash
# Set up (idempotent) and launch the 3D-GAN Explorer with the bundled model. Arguments go to gan3d-explorer.
# With no display (a server, CI), it runs under Xvfb and writes a screenshot instead of opening a window.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ] || [ "$(uname)" = "Darwin" ]; then
    exec .venv/bin/gan3d-explorer "$@"
fi
SHOT="${GAN3D_SCREENSHOT:-$ROOT/explorer-screenshot.png}"
echo "app.sh: no display found; running under Xvfb and saving a screenshot to $SHOT" >&2
exec xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/gan3d-explorer --screenshot "$SHOT" --quit-after 30 "$@"
