"""The GT Lava process against the torch GT population, step for step (one Lava run, 50 steps)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lava")

pytestmark = pytest.mark.lava


def test_lava_gt_matches_torch_step_for_step():
    from spikes.deploy.processes.gt import run_gt_lava, torch_reference

    rng = np.random.default_rng(3)
    n, m, steps = 8, 4, 50
    w = rng.normal(0.0, 0.5, (n, n))
    q = (w + w.T) / 2
    np.fill_diagonal(q, 1.0)
    bias = rng.uniform(-0.3, 0.9, n)
    inputs = rng.uniform(0.0, 1.0, (steps, m))
    weights = rng.normal(0.0, 0.5, (n, m))
    lava = run_gt_lava(q, steps, bias, inputs, weights, lam=15.0, a=0.5)
    ref = torch_reference(q, steps, bias, inputs, weights, lam=15.0, a=0.5)
    assert lava["potentials"].shape == (steps, n)
    assert np.abs(lava["potentials"] - ref["potentials"]).max() < 1e-6
    assert np.array_equal(lava["spikes"], ref["spikes"])
    assert 0 < ref["spikes"].sum() < ref["spikes"].size  # a real test: some neurons spike, not all the time
    assert np.abs(lava["potentials"]).max() <= 1.0
