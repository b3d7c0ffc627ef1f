"""Task generators: seeded, the cue task's structure and labels, the pattern task's target, digits sequences."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikes.datasets.tasks import CueTaskConfig, PatternTaskConfig, cue_task, pattern_task


def test_cue_task_is_seeded():
    a, b, c = cue_task(8, seed=5), cue_task(8, seed=5), cue_task(8, seed=6)
    assert torch.equal(a.x, b.x) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.x, c.x)


def test_cue_task_structure_paper_timing():
    cfg = CueTaskConfig()
    batch = cue_task(64, cfg, seed=1)
    x = batch.x.numpy()
    assert x.shape == (2250, 64, 40) and cfg.T == 2250
    assert batch.mask.sum() == 150 and batch.mask[-150:].sum() == 150
    # labels are the majority side
    assert torch.equal(batch.labels, (batch.cues.sum(1) >= 4).long())
    for b in range(4):
        for k in range(7):
            window = slice(150 * k + 50, 150 * (k + 1))
            side = int(batch.cues[b, k])
            assert x[window, b, 10 * (1 - side):10 * (2 - side)].sum() == 0  # the other side is silent
            gap = slice(150 * k, 150 * k + 50)
            assert x[gap, b, :20].sum() == 0
        assert x[1050:, b, :20].sum() == 0  # nothing after the cues on cue channels
        assert x[:2100, b, 20:30].sum() == 0  # recall only at the end
    # rates: cue channels at 40 Hz while on, recall 40 Hz, noise 10 Hz
    noise_rate = x[:, :, 30:].mean() * 1000
    recall_rate = x[2100:, :, 20:30].mean() * 1000
    assert 8 < noise_rate < 12 and 34 < recall_rate < 46


def test_cue_task_shortened_dt_and_errors():
    cfg = CueTaskConfig(dt=10)
    assert cfg.T == 225 and cue_task(2, cfg).x.shape == (225, 2, 40)
    with pytest.raises(ValueError, match="n_cues"):
        CueTaskConfig(n_cues=6)
    with pytest.raises(ValueError, match="f0"):
        CueTaskConfig(dt=50)


def test_pattern_task_target_is_sum_of_four_sines():
    x, y = pattern_task(PatternTaskConfig(), seed=3)
    assert x.shape == (1000, 1, 100) and y.shape == (1000, 1, 1)
    assert 45 < x.mean() * 1000 < 55
    assert torch.equal(pattern_task(seed=3)[1], y)
    # project the target on the sines/cosines of the 4 periods: it is entirely in their span
    t = np.arange(1, 1001, dtype=np.float64)
    basis = np.stack([f(2 * math.pi * t / p) for p in (1000, 500, 333, 200) for f in (np.sin, np.cos)], 1)
    coef, res, *_ = np.linalg.lstsq(basis, y.view(-1).double().numpy(), rcond=None)
    assert res[0] < 1e-6
    amps = np.hypot(coef[0::2], coef[1::2])
    assert np.all((amps > 0.5 - 1e-4) & (amps < 2 + 1e-4))


def test_digits_sequences_flatten_the_frames():
    digits = pytest.importorskip("spikes.datasets.digits")
    from spikes.datasets.tasks.digits import digits_sequences

    x, y = digits_sequences("test", n_time_bins=8)
    frames, labels = digits.digits_frames("test", n_time_bins=8)
    assert x.shape == (8, frames.shape[0], 2 * frames.shape[3] * frames.shape[4])
    assert torch.equal(y, labels)
    assert torch.equal(x[3, 7].view(frames.shape[2:]), frames[7, 3])
