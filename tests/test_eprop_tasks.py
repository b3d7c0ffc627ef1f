"""Task generators: seeded, the cue task's structure and labels, the cue task as the trainer's data set (CueSet,
``open_dataset('cue')``), the pattern task's target, digits sequences."""
from __future__ import annotations

import json
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


def test_cue_set_blocks_are_the_cue_task_draws_of_the_old_seeds():
    """Block k of the training set is cue_task(batch_size, cfg, seed * 100003 + k), the test set's block 0 uses
    seed * 100003 + 99991; any indices read the same trials; the trainer makes them time first."""
    from spikes.datasets.tasks import CueSet
    from spikes.models.registry import KINDS
    from spikes.training.loop import epoch_batches, make_batch

    cfg = CueTaskConfig(dt=20)
    train, test = CueSet(3, 4, cfg, seed=2), CueSet(1, 6, cfg, seed=2, split="test")
    assert len(train) == 12 and len(test) == 6 and train.input_shape == (40,) and train.kind == "frames"
    order = epoch_batches(train, 4, seed=2, epoch=0)                      # shuffle = False: the blocks in order
    assert [b.tolist() for b in order] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    for k, idx in enumerate(order):
        ref = cue_task(4, cfg, seed=2 * 100003 + k)
        batch = make_batch(KINDS["rsnn"], *train.batch(idx), train.loss_mask)
        assert torch.equal(batch.x, ref.x) and torch.equal(batch.y, ref.labels) and torch.equal(batch.mask, ref.mask)
    ref = cue_task(6, cfg, seed=2 * 100003 + 99991)
    assert torch.equal(test.batch(torch.arange(6))[0], ref.x.transpose(0, 1))
    x, y = train.batch(torch.tensor([9, 2, 5]))                             # across blocks, any order
    assert torch.equal(x[0], cue_task(4, cfg, seed=2 * 100003 + 2).x[:, 1])
    assert torch.equal(y[1:], torch.stack([cue_task(4, cfg, seed=2 * 100003).labels[2],
                                           cue_task(4, cfg, seed=2 * 100003 + 1).labels[1]]))
    assert torch.equal(train.loss_mask, ref.mask) and train.loss_mask.sum() == 8
    limited = CueSet(2, 4, cfg, seed=2, limit=6)
    assert len(limited) == 6 and torch.equal(limited.batch(torch.arange(4, 6))[0],
                                             cue_task(4, cfg, seed=2 * 100003 + 1).x[:, :2].transpose(0, 1))
    d = train.describe()
    assert json.loads(json.dumps(d))["task"]["dt"] == 20 and d["len"] == 12 and d["T"] == cfg.T


def test_cue_set_errors():
    from spikes.datasets.tasks import CueSet

    with pytest.raises(IndexError, match=r"\[0, 8\)"):
        CueSet(2, 4).batch(torch.tensor([8]))
    with pytest.raises(ValueError, match="split"):
        CueSet(1, 4, split="val")
    with pytest.raises(ValueError, match="n_batches"):
        CueSet(100000, 4)
    with pytest.raises(ValueError, match="batch_size"):
        CueSet(1, 0)


def test_open_dataset_cue():
    from spikes.options import ConfigError
    from spikes.training.data import DataOptions, open_dataset

    train = open_dataset("cue", "train", DataOptions(train_limit=70), seed=1)
    test = open_dataset("cue", "test", DataOptions(), seed=1)
    assert len(train) == 70 and train.batch_size == 64 and train.cfg == CueTaskConfig() and len(test) == 512
    assert torch.equal(train.batch(torch.arange(64, 66))[1], cue_task(64, seed=100004).labels[:2])
    assert len(open_dataset("cue", "train", DataOptions())) == 64 * 200
    with pytest.raises(ConfigError, match=r"data\.n_time_bins.*'cue'"):
        open_dataset("cue", "train", DataOptions(n_time_bins=20))
    with pytest.raises(ConfigError, match="no validation split"):
        open_dataset("cue", "val", DataOptions())
