"""The Reconstruct panel shows each reconstruction's confidence: a short label, a clear warning (and a message)
when the picture is blank or does not look like furniture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from explorer.panels.reconstruct import ReconstructPanel


@pytest.fixture
def pictures(tmp_path):
    chair = np.full((64, 64, 3), 255, np.uint8)
    chair[16:48, 20:44] = (120, 80, 40)
    Image.fromarray(chair).save(tmp_path / "chair.png")
    Image.fromarray(np.full((64, 80, 3), 250, np.uint8)).save(tmp_path / "blank.png")
    return tmp_path


def test_panel_shows_the_confidence_and_warns_on_a_blank_picture(qtbot, ctx, pictures, wait_idle):
    p = ReconstructPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    assert p.confidence.isHidden()  # nothing reconstructed yet
    messages = []
    ctx.notifier.message.connect(lambda level, text: messages.append((level, text)))
    p.reconstruct(str(pictures / "chair.png"))
    qtbot.waitUntil(lambda: ctx.state.reconstruction is not None, timeout=20000)
    wait_idle(ctx)
    assert not p.confidence.isHidden() and "onfidence" in p.confidence.text()
    p.reconstruct(str(pictures / "blank.png"))
    qtbot.waitUntil(lambda: ctx.state.reconstruction.image.endswith("blank.png"), timeout=20000)
    wait_idle(ctx)
    text = p.confidence.text()
    assert not p.confidence.isHidden() and "Low confidence (0.00)" in text and "blank" in text
    assert "#fde2e1" in p.confidence.styleSheet()  # the warning colours
    assert ("warning", "blank.png: LOW confidence 0.00: the picture is blank (no object to reconstruct)") in messages
    ctx.state.undo_stack.undo()  # back to the chair: its own label, not the blank picture's
    assert "blank" not in p.confidence.text() or p.confidence.isHidden()
    p.close_views()
