"""Why BTSP does not learn the four-arm spiral (issue 18): where the information is lost, measured.

    python benchmarks/bench_btsp_spiral_readout.py [--out DIR] [--epochs 10]

1. Trains the spiral E/I network of ``bench_local_rules.py`` through the one trainer three ways: not at all (all
   learning rates 0: the random network), BTSP as configured there, and BTSP with EIANN's ``relu_gate`` and
   ``cap_negative``. For each it prints the network's own test accuracy, a linear probe of every hidden layer
   (scikit-learn logistic regression on the forward E rates, train split -> test split: what an ideal linear
   readout could get from those features), the fraction of active units, and the smallest cosine between two
   arms' mean hidden-2 patterns (near 1: every arm looks alike to a prototype readout).
2. Trains only the output layer of the random network (its own E/SomaI dynamics, BTSP's output rule with the rule's
   default options, batch 8) on fixed features: the network's hidden-2 rates, and an idealised localised code, 64
   Gaussian place fields of the 2-D position (8 x 8 grid, width 0.08). The place-field code is a diagnosis only, not
   an input encoding for the task. A Dale-bounded delta rule ``dW = lr (t - y) r`` runs beside it.

Writes ``results.json`` into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_local_rules import MODEL  # noqa: E402

from spikes.datasets.tasks.spiral import spiral_split  # noqa: E402
from spikes.io import atomic_write_json  # noqa: E402
from spikes.learning.btsp import BTSP, btsp_delta  # noqa: E402
from spikes.training.checkpoint import load_model  # noqa: E402
from spikes.training.config import resolve_config  # noqa: E402
from spikes.training.loop import train  # noqa: E402

FROZEN = {"lr": 0.0, "lr_output": 0.0, "lr_dendritic": 0.0, "lr_inhibitory": 0.0}
RUNS = {"random network (no learning)": (FROZEN, 1), "btsp": ({}, None),
        "btsp, relu_gate + cap_negative": ({"relu_gate": True, "cap_negative": True}, None)}
DIRS = dict(zip(RUNS, ("random", "btsp", "btsp_gate")))


def hidden_report(model, train_xy, test_xy) -> dict:
    """Linear probes of every hidden layer, active fractions, the arms' mean-pattern cosine, own accuracy."""
    dt = model.layers[0].w_in.dtype
    with torch.no_grad():
        tr = [s.e.numpy() for s in model.forward_phase(train_xy[0].to(dt))]
        te = [s.e.numpy() for s in model.forward_phase(test_xy[0].to(dt))]
    y_tr, y_te = train_xy[1].numpy(), test_xy[1].numpy()
    out = {"accuracy": float((te[-1].argmax(1) == y_te).mean()), "probe": [], "active": []}
    for a, b in zip(tr[:-1], te[:-1]):
        out["probe"].append(float(LogisticRegression(max_iter=3000, C=10.0).fit(a, y_tr).score(b, y_te)))
        out["active"].append(float((a > 0).mean()))
    means = np.stack([tr[-2][y_tr == c].mean(0) for c in range(4)])
    means /= np.linalg.norm(means, axis=1, keepdims=True) + 1e-12
    out["arm_mean_cosine_min"] = float((means @ means.T).min())
    return out


def place_fields(x: torch.Tensor, dtype) -> torch.Tensor:
    """64 Gaussian place fields of the 2-D position (the ON channels of the spiral's features)."""
    grid = torch.linspace(0.05, 0.95, 8)
    centres = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2).to(dtype)
    return torch.exp(-((x[:, None, :2].to(dtype) - centres[None]) ** 2).sum(-1) / (2 * 0.08 ** 2))


def train_readout(checkpoint: Path, features: str, rule: str, epochs: int, train_xy, test_xy) -> float:
    """The random network's output layer alone on fixed features, by BTSP's output rule or the delta rule."""
    model, _, _ = load_model(checkpoint)
    o = BTSP.Options()
    top = len(model.layers) - 1
    layer, dt = model.layers[top], model.layers[0].w_in.dtype
    with torch.no_grad():
        if features == "place fields":
            h_tr, h_te = place_fields(train_xy[0], dt), place_fields(test_xy[0], dt)
        else:
            h_tr = model.forward_phase(train_xy[0].to(dt))[-2].e
            h_te = model.forward_phase(test_xy[0].to(dt))[-2].e
        g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            order = torch.randperm(len(h_tr), generator=g)
            for i in range(0, len(order), 8):
                h, y = h_tr[order[i:i + 8]], train_xy[1][order[i:i + 8]]
                st = model.settle(top, h)
                p = (F.one_hot(y, st.e.shape[1]).to(dt) - st.e).clamp(-1.0, 1.0)
                et = h.clamp(0.0, 1.0)
                delta = (btsp_delta(layer.w_in, et, p, layer.w_max, o.dep_ratio, o.dep_threshold, o.dep_width)
                         if rule == "btsp" else p.T @ et)
                layer.w_in.add_(delta, alpha=o.lr_output)
                layer.w_es.add_((st.e - 1.0 / layer.n_e).T @ st.s, alpha=o.lr_inhibitory)
                layer.constrain_()
        return float((model.settle(top, h_te).e.argmax(1) == test_xy[1]).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="")
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_btsp_spiral_readout_"))
    out.mkdir(parents=True, exist_ok=True)
    train_xy, test_xy = spiral_split("train"), spiral_split("test")
    results: dict = {"networks": {}, "readout": {}}
    for name, (rule, epochs) in RUNS.items():
        t0 = time.perf_counter()
        tables = {"model": {"kind": "ei_network", **MODEL["spiral"]}, "rule": {"name": "btsp", **rule},
                  "data": {"dataset": "spiral"},
                  "train": {"epochs": epochs or args.epochs, "batch_size": 8, "progress": False, "threads": 1}}
        run_dir = out / DIRS[name]
        train(resolve_config(None, tables), run_dir, log=lambda m: None)
        r = hidden_report(load_model(run_dir / "checkpoint.pt")[0], train_xy, test_xy)
        results["networks"][name] = r
        print(f"{name:32s} own readout {r['accuracy']:.3f} | linear probe hidden 1 {r['probe'][0]:.3f}, hidden 2 "
              f"{r['probe'][1]:.3f} | active {r['active'][0]:.2f}, {r['active'][1]:.2f} | arms' mean hidden-2 "
              f"cosine >= {r['arm_mean_cosine_min']:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    probe = LogisticRegression(max_iter=3000, C=10.0).fit(place_fields(train_xy[0], torch.float64).numpy(),
                                                          train_xy[1].numpy())
    results["place_field_probe"] = float(probe.score(place_fields(test_xy[0], torch.float64).numpy(),
                                                     test_xy[1].numpy()))
    print(f"linear probe of the place-field code: {results['place_field_probe']:.3f}")
    for features in ("hidden 2 of the random network", "place fields"):
        for rule in ("btsp", "delta"):
            acc = train_readout(out / "random" / "checkpoint.pt", features, rule, args.epochs, train_xy, test_xy)
            results["readout"][f"{features}, {rule}"] = acc
            print(f"output layer alone, {rule:5s} rule, on {features}: test accuracy {acc:.3f}", flush=True)
    atomic_write_json(out / "results.json", results)
    print(f"\nwrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
