"""Issue 19 part 3: interference between tasks learned in sequence (memory tasks, rate_rnn, the measures, the CLI)."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import scipy.optimize
import torch

from spikes.cli import main
from spikes.datasets.tasks.memory import MemorySet, MemoryTaskConfig, memory_trials
from spikes.learning.rule import Batch
from spikes.models.rate_rnn import RateRNN, SignedTargetObjective
from spikes.pipeline.interference import TaskReadout, summarise
from spikes.reports.interference import (activity_subspace, drive_norms, find_fixed_points, principal_angles,
                                         update_cosines)


# ------------------------------------------------------------------------------------------------------ tasks
def test_memory_task_cue_window_labels_and_seeds():
    cfg = MemoryTaskConfig(task=1, input_drive=0.5, noise=0.0)
    x, y = memory_trials(16, cfg, seed=3)
    assert x.shape == (16, 40, 2) and set(y.tolist()) <= {2, 3}
    s = (y % 2).float() * 2 - 1
    amp = np.zeros(40, np.float32)
    amp[5:10] = 1.0                                # the cue's 5 steps, then half amplitude through the response
    amp[10:] = 0.5
    assert torch.equal(x[:, :, 1], s[:, None] * torch.from_numpy(amp)[None])
    assert torch.count_nonzero(x[:, :, 0]) == 0    # task A's channel stays silent in B
    assert torch.equal(memory_trials(16, cfg, seed=3)[0], x)
    assert not torch.equal(memory_trials(16, cfg, seed=3, stream=1)[0], x)
    spiking = MemorySet(MemoryTaskConfig(spikes_per_channel=4), "test", seed=0, n=32)
    xs, ys = spiking.batch(torch.arange(32))
    assert xs.shape == (32, 40, 16) and spiking.n_classes == 4 and int(spiking.loss_mask.sum()) == 30
    for i in range(32):                            # the cue population of the trial's sign fires most
        counts = xs[i].sum(0).view(4, 4).sum(1)
        assert int(counts.argmax()) == int(ys[i])


def test_signed_target_objective_by_hand():
    out = torch.tensor([[[0.5, 9.0]], [[1.5, 9.0]]]).expand(2, 2, 2).clone()     # (T=2, B=2, K=2)
    out[:, 1, 0] = torch.tensor([-2.0, 1.0])
    batch = Batch(torch.zeros(2, 2, 1), torch.tensor([1, 0]), torch.tensor([True, True]))
    obj = SignedTargetObjective()
    # trial 0: output 0 vs +1: (0.25 + 0.25) / 2; trial 1: output 0 vs -1: (1 + 4) / 2
    assert obj.loss((out, None), batch).item() == pytest.approx((0.25 + 2.5) / 2)
    m = obj.metric_sums((out, None), batch)
    assert m["accuracy"] == 2.0                    # means +1.0 and -0.5 have the right signs


def test_signed_target_objective_silent_others_by_hand():
    out = torch.tensor([[[0.5, 2.0]], [[1.5, -1.0]]])                              # (T=2, B=1, K=2)
    batch = Batch(torch.zeros(2, 1, 1), torch.tensor([1]), torch.tensor([True, True]))
    # own output 0 vs +1: (0.25 + 0.25) / 2; the other output asked for 0: (4 + 1) / 2
    assert SignedTargetObjective(silent=True).loss((out, None), batch).item() == pytest.approx(0.25 + 2.5)
    assert SignedTargetObjective().loss((out, None), batch).item() == pytest.approx(0.25)


def test_task_readout_masks_the_other_tasks():
    class Fixed(torch.nn.Module):
        def __init__(self, y):
            super().__init__()
            self.y = y

        def forward(self, x):
            return self.y, "rest"

    signed = torch.tensor([[[0.3, -2.0]]])
    y, rest = TaskReadout(Fixed(signed), 0, 2)(None)
    assert rest == "rest" and torch.equal(y, torch.tensor([[[0.3, 0.0]]]))
    assert torch.equal(TaskReadout(Fixed(signed), 1, 2, silent=True)(None)[0], torch.zeros(1, 1, 2))
    logits = torch.tensor([[[1.0, 2.0, 9.0, 9.0]]])
    y = TaskReadout(Fixed(logits), 0, 2)(None)[0]
    assert y[0, 0, :2].tolist() == [1.0, 2.0] and (y[0, 0, 2:] == -1e9).all()   # A: a choice between A- and A+
    with pytest.raises(ValueError, match="3 outputs"):
        TaskReadout(Fixed(torch.zeros(1, 1, 3)), 0, 2)(None)


def test_rate_rnn_learn_recurrent_keeps_input_and_readout():
    net = RateRNN(2, 8, 2, seed=1, learn="recurrent")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    y, _ = net(torch.randn(5, 3, 2))
    y.square().sum().backward()
    opt.step()
    after = net.state_dict()
    for k in ("w_in", "w_out", "b_out"):
        assert torch.equal(after[k], before[k])
    assert not torch.equal(after["w_rec"], before["w_rec"]) and not torch.equal(after["b"], before["b"])
    with pytest.raises(ValueError, match="learn"):
        RateRNN(2, 8, 2, learn="readout")


def test_rate_rnn_readout_along_the_inputs():
    net = RateRNN(2, 64, 2, seed=3, readout="input")
    assert torch.allclose(torch.diagonal(net.w_out @ net.w_in), torch.ones(2))   # W_out[k] . W_in[:, k] = 1
    with torch.no_grad():                          # a held input answers its own output with its sign, by itself
        y, _ = net(torch.tensor([1.0, 0.0]).expand(60, 1, 2))
    assert 0.3 < float(y[-1, 0, 0]) < 1.0
    with pytest.raises(ValueError, match="n_out = n_in"):
        RateRNN(2, 8, 3, readout="input")


def test_rate_rnn_step_by_hand():
    net = RateRNN(2, 3, 1, alpha=0.5, seed=0)
    x = torch.randn(4, 2, 2)
    y, h = net(x)
    ref = torch.zeros(2, 3)
    for t in range(4):
        ref = 0.5 * ref + 0.5 * torch.tanh(ref @ net.w_rec.T + x[t] @ net.w_in.T + net.b)
        assert torch.allclose(h[t], ref, atol=1e-6)
    assert torch.allclose(y[-1], ref @ net.w_out.T + net.b_out, atol=1e-6)


# --------------------------------------------------------------------------------------------------- measures
def test_fixed_points_of_a_hand_built_tanh_rnn():
    """F(h) = (1 - a) h + a tanh(W h), W = diag(w1, w2) with w > 1: per unit 0 and +-u (u = tanh(w u)), so 9 fixed
    points; a unit's derivative at u is 1 - a + a w (1 - u^2), stable when w (1 - u^2) < 1."""
    w, alpha = torch.tensor([1.5, 3.0], dtype=torch.float64), 0.3

    def step(h):
        return (1 - alpha) * h + alpha * torch.tanh(h * w)

    roots = [scipy.optimize.brentq(lambda u, wi=float(wi): u - math.tanh(wi * u), 1e-3, 1.0) for wi in w]
    expected = np.array(list(itertools.product(*[(-r, 0.0, r) for r in roots])))
    gen = torch.Generator().manual_seed(0)
    starts = torch.rand(200, 2, generator=gen, dtype=torch.float64) * 2.4 - 1.2
    fps = find_fixed_points(step, starts, tol=1e-12, merge=1e-4, adam_steps=300)
    assert len(fps) == 9
    for p in expected:
        d = np.linalg.norm(fps.points - p, axis=1)
        j = int(d.argmin())
        assert d[j] < 1e-5
        stable = all(p_i != 0 and w_i * (1 - p_i ** 2) < 1 for p_i, w_i in zip(p, w.tolist()))
        assert bool(fps.stable[j]) == stable
        lam = sorted(1 - alpha + alpha * w_i * (1 - p_i ** 2) for p_i, w_i in zip(p, w.tolist()))
        assert np.allclose(sorted(fps.eigenvalues[j].real), lam, atol=1e-6)


def test_fixed_point_of_a_linear_rnn():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    a = 0.8 * a / torch.linalg.eigvals(a).abs().max()
    b = torch.randn(5, generator=gen, dtype=torch.float64)
    fps = find_fixed_points(lambda h: h @ a.T + b, torch.randn(20, 5, generator=gen, dtype=torch.float64),
                            tol=1e-14)
    assert len(fps) == 1 and fps.stable.all()
    assert np.allclose(fps.points[0], torch.linalg.solve(torch.eye(5, dtype=torch.float64) - a, b).numpy(), atol=1e-6)


def test_subspace_angles_hand_case():
    theta = 0.4
    rng = np.random.default_rng(0)
    e = np.eye(6)
    plane_a = np.stack([e[0], e[1]], 1)
    plane_b = np.stack([e[0], math.cos(theta) * e[1] + math.sin(theta) * e[2]], 1)
    ha = (rng.normal(size=(500, 2)) * [3.0, 2.0]) @ plane_a.T
    hb = (rng.normal(size=(500, 2)) * [3.0, 2.0]) @ plane_b.T + 5.0           # an offset changes no subspace
    sa, sb = activity_subspace(ha, 0.999), activity_subspace(hb, 0.999)
    assert sa.shape == (6, 2) and sb.shape == (6, 2)
    assert np.allclose(principal_angles(sa, sb), [0.0, math.degrees(theta)], atol=1e-6)
    assert activity_subspace(ha, 0.5).shape == (6, 1)                          # 9 / 13 of the variance


def test_update_cosines_by_hand():
    w0 = {"w_in": torch.zeros(2), "w_rec": torch.zeros(2, 2), "w_out": torch.zeros(1)}
    wa = {"w_in": torch.tensor([1.0, 0.0]), "w_rec": torch.tensor([[1.0, 1.0], [0.0, 0.0]]),
          "w_out": torch.tensor([2.0])}
    wb = {"w_in": torch.tensor([1.0, 1.0]), "w_rec": torch.tensor([[1.0, 2.0], [0.0, 1.0]]),
          "w_out": torch.tensor([2.0])}
    c = update_cosines(w0, wa, wb)
    assert c["input"] == pytest.approx(0.0)                          # dA = (1, 0), dB = (0, 1)
    assert c["recurrent"] == pytest.approx(1 / (math.sqrt(2) * math.sqrt(2)))   # dA=(1,1,0,0), dB=(0,1,0,1)
    assert math.isnan(c["readout"])                                  # B did not change the readout


def test_drive_norms_by_hand():
    w_in, w_rec = torch.tensor([[2.0], [0.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    x = torch.tensor([[[1.0]], [[0.0]]])                             # (T=2, B=1, 1)
    h = torch.tensor([[[3.0, 4.0]], [[0.0, 0.0]]])
    d = drive_norms(w_in, w_rec, x, h)
    assert d["input"] == pytest.approx(1.0) and d["recurrent"] == pytest.approx(2.5)   # (2 + 0)/2, (0 + 5)/2
    assert d["input_fraction"] == pytest.approx(1.0 / 3.5)


def test_summary_checks_monotone_and_spearman():
    def row(d, f, rot):
        return {"drive": d, "seed": 0, "forgetting": f, "a_metric": {"after_a": 1.0, "after_b": 1 - f},
                "b_metric": 1.0, "drive_a": {"input_fraction": d}, "update_cosine": {"input": 0, "recurrent": 0,
                                                                                      "readout": 0},
                "subspace": {"mean_angle_ab_deg": 80, "mean_angle_a_before_after_deg": 10},
                "fixed_points": {"rotation_deg": rot, "shift": 0.1, "found_after_a": 3}}
    good = summarise([row(0.0, 0.9, 40), row(0.5, 0.5, 20), row(1.0, 0.1, 5), row(0.25, 0.7, 30)])
    assert good["checks"]["monotone"] and good["checks"]["met"]
    assert good["checks"]["spearman_rotation_forgetting_means"] == pytest.approx(1.0)
    bad = summarise([row(0.0, 0.9, 5), row(0.5, 0.95, 20), row(1.0, 0.1, 40), row(0.25, 0.7, 30)])
    assert not bad["checks"]["monotone"] and not bad["checks"]["met"]


# -------------------------------------------------------------------------------------------------------- CLI
def test_cli_interference_end_to_end(tmp_path):
    out = tmp_path / "ifr"
    rc = main(["analyse", "interference", "--out", str(out), "--drives", "0", "1", "--seeds", "0", "--epochs-a",
               "3", "--epochs-b", "2", "--n-rec", "16", "--snapshots", "2", "--fixed-point-starts", "8",
               "--set", "data.train_limit=128", "--set", "data.test_limit=32", "--no-progress"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert (out / "table.md").read_text().startswith("**rate_rnn (bptt)**")
    assert (out / "interference.png").read_bytes()[:4] == b"\x89PNG"
    assert [e["drive"] for e in res["table"]] == [1.0, 0.0]
    for r in res["rows"]:
        la = r["a_loss"]
        assert la["silent"] == pytest.approx(1.0)     # outputs of 0 against targets of +-1
        assert r["forgetting"] == pytest.approx((la["after_b"] - la["after_a"]) / (la["silent"] - la["after_a"]))
        assert math.isnan(r["update_cosine"]["input"]) and r["update_norm"]["readout"] == {"A": 0.0, "B": 0.0}
        assert r["fixed_points"]["track"][0]["rotation_deg"] == pytest.approx(0.0, abs=1e-6)
        assert len(r["fixed_points"]["track"]) >= 3 and (out / f"drive{r['drive']:.2f}-seed0" / "B" /
                                                         "checkpoint.pt").exists()
        assert set(r["update_cosine"]) == {"input", "recurrent", "readout"}
    again = main(["analyse", "interference", "--out", str(out), "--drives", "0", "1", "--seeds", "0",
                  "--epochs-a", "3", "--epochs-b", "2", "--n-rec", "16", "--snapshots", "2",
                  "--fixed-point-starts", "8", "--set", "data.train_limit=128", "--set", "data.test_limit=32",
                  "--no-progress"])                # finished pairs are read back, not retrained
    assert again == 0 and json.loads((out / "results.json").read_text())["rows"] == res["rows"]
    assert main(["analyse", "interference", "--out", str(out), "--drives", "2"]) == 2
