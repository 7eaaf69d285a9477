"""Shared fixtures: tiny synthetic data only (16^3), never files from ../shared or the user's settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from hypothesis import settings

from gan_core.data.synthetic import make_synthetic_dataset, save_npz

# The default run gates every landing, so property tests draw the same examples each time; a failure they
# find is reproducible, and a rare one cannot block an unrelated change. `GAN3D_HYPOTHESIS=explore` draws new
# examples (the slow fuzz tests always do): run it when changing meshing, importers or latent operations.
settings.register_profile("gate", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("GAN3D_HYPOTHESIS", "gate"))


@pytest.fixture(scope="session")
def synthetic_set() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(voxels (15, 16, 16, 16) uint8, labels int64, classes): 3 of each synthetic class, seed 0."""
    voxels, labels, classes = make_synthetic_dataset(3, resolution=16, seed=0)
    voxels.setflags(write=False)  # shared across tests: nobody may change it
    labels.setflags(write=False)
    return voxels, labels, classes


@pytest.fixture
def synthetic_npz(tmp_path: Path, synthetic_set: tuple[np.ndarray, np.ndarray, list[str]]) -> Path:
    """The synthetic set written as an npz set in the documented layout."""
    return save_npz(tmp_path / "synthetic16.npz", *synthetic_set)


@pytest.fixture(scope="module")
def seeded_tiny_model() -> Any:
    """An untrained tiny16 model with torch's seed 0 (the same weights every run), one per test module."""
    import torch

    from gan_core.runtime import load_model

    torch.manual_seed(0)
    return load_model(profile="tiny16", device="cpu", precision="fp32")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test: on a loaded 2-core machine two threads spin against each other (10x
    slower). Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run only when asked for: ``pytest -m slow`` (or any -m expression naming slow)."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
