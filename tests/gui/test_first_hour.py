"""What a new user met in the first hour (issue 26): the neighbours panel follows the workspace on screen."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from gan_core.latent import arithmetic


def _names(panel) -> list[int]:
    return [int(panel.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(panel.list.count())]


def _nearest(bank, model, grid, k=5) -> list[int]:
    """The bank rows nearest to ``grid``, computed here, apart from the panel."""
    _dist, idx = bank.query(None, voxels=np.asarray(grid, np.float32)[None], model=model, k=k, kind="last")
    return [int(i) for i in idx[0]]


def test_neighbours_follow_the_shape_of_every_workspace(qtbot, window, tiny_bank, synthetic_set, wait_idle):
    st, panel, model = window.state, window.retrieval, window.state.model
    st.set_bank(tiny_bank, "bank.h5")
    wait_idle(window.ctx)
    on_path = _nearest(tiny_bank, model, model.generate(st.current_z())[0])
    assert _names(panel) == on_path and "current shape" in panel.heading.text()

    window.tabs.setCurrentIndex(1)  # Arithmetic: the result's neighbours, not the path's
    wait_idle(window.ctx)
    z = arithmetic(*(st.slot(s).z for s in "abc"), prior=model.profile.z_prior)
    np.testing.assert_allclose(panel.channel.result.z, z, rtol=1e-6)
    assert _names(panel) == _nearest(tiny_bank, model, model.generate(z)[0])
    assert "arithmetic result" in panel.heading.text()
    st.set_weights((1.0, 0.5, 1.0))  # and it keeps following the result
    wait_idle(window.ctx)
    z2 = arithmetic(*(st.slot(s).z for s in "abc"), (1.0, 0.5, 1.0), prior=model.profile.z_prior)
    np.testing.assert_allclose(panel.channel.result.z, z2, rtol=1e-6)

    window.tabs.setCurrentIndex(2)  # Reconstruct: nothing reconstructed yet, so no list at all
    wait_idle(window.ctx)
    assert panel.list.count() == 0 and "Reconstruct an image" in panel.novelty.text()
    zr = model.sample_z(1, seed=5)[0]
    st.set_reconstruction(zr, "chair.png", "image chair.png")
    wait_idle(window.ctx)
    assert _names(panel) == _nearest(tiny_bank, model, model.generate(zr)[0])

    window.tabs.setCurrentIndex(3)  # Training: no samples yet, then the chosen preview sample
    wait_idle(window.ctx)
    assert panel.list.count() == 0 and "No preview samples" in panel.novelty.text()
    vox = synthetic_set[0]
    for i, th in enumerate(window.training.previews[:3]):
        th.set_voxels(vox[4 + i].astype(np.float32))
    window.training.choose_sample(2)  # a training shape itself: it is its own nearest neighbour
    wait_idle(window.ctx)
    assert _names(panel)[0] == 6 and panel.list.item(0).text().endswith("distance 0.000")
    assert _names(panel) == _nearest(tiny_bank, model, vox[6])
    assert "preview sample 3" in panel.novelty.text()

    window.tabs.setCurrentIndex(0)  # back on the path
    wait_idle(window.ctx)
    assert _names(panel) == on_path

