"""The launch path imports only what the first shape needs: modules of hidden tabs and docks wait until shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# Imported later, when what needs them is first shown: the latent map (a hidden dock) and the training curves (a
# hidden tab) draw with pyqtgraph; the shared VTK camera (pyvista.plotting, which imports matplotlib.pyplot) is
# made for the first VTK view, and offscreen there is none.
DEFERRED = ("pyqtgraph", "pyvista.plotting", "matplotlib.pyplot")

SCRIPT = textwrap.dedent("""
    import json, sys
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    app = QApplication([])
    from explorer.state import SessionState
    from explorer.window import MainWindow

    window = MainWindow(SessionState(), settings=QSettings(sys.argv[1], QSettings.Format.IniFormat))
    window.show_workspace("interpolate")
    window.show()
    for _ in range(5):
        app.processEvents()
    early = [m for m in {deferred!r} if m in sys.modules]
    window.show_workspace("map")  # the map, then the training tab, on screen: now they import what they need
    window.show_workspace("training")
    for _ in range(5):
        app.processEvents()
    print(json.dumps({{"early": early, "map_plot": window.map.plot is not None,
                      "training_plots": window.training.plots is not None}}))
    window.shutdown()
""")


def test_the_window_opens_without_the_modules_of_hidden_panels(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "GAN3D_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(deferred=DEFERRED), str(tmp_path / "settings.ini")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["early"] == [], f"imported before the first shape: {result['early']}"
    assert result["map_plot"] and result["training_plots"]  # ... and made once shown
