"""Shared test fixtures: seeding, the real recordings beside the repo, a temporary run directory."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

# lava sets the multiprocessing start method at import; sklearn or tqdm may set one first and break a later
# `import lava` in the same pytest process. Import it before anything else runs.
import lava.magma.core.run_configs  # noqa: F401,E402

REPO = Path(__file__).resolve().parents[1]
SHARED_EVENTS = REPO.parent / "shared" / "data" / "events"


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def shared_events() -> Path:
    """The real event-camera recordings of ../shared/data/events (read-only)."""
    if not SHARED_EVENTS.is_dir():
        pytest.fail(f"real recordings not found at {SHARED_EVENTS}: CI and developers have ../shared beside the repo")
    return SHARED_EVENTS
