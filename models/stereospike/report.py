"""One-command StereoSpike report: SNN vs ANN error, and firing rate vs error over spike-penalty weights.

``run_report`` trains (or reuses, when a run's ``metrics.json`` matches its config) one StereoSpike per
penalty weight ``beta`` and one ANN twin, evaluates them on the test split next to the mean-depth
baseline (predict the training set's mean depth everywhere), and writes into ``run_dir``:
``report.json`` (all figures), ``report.md`` (table) and ``report.png`` (MDE bars, firing rate vs MDE).
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from spikes.io import atomic_write, atomic_write_text
from spikes.models.stereospike.train import (StereoConfig, StereoData, evaluate,
                                             mean_depth_baseline, save_checkpoint, train, write_json)


def _comparable(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in ("input_size", "in_channels", "init_depth")}


def train_and_evaluate(cfg: StereoConfig, train_data: StereoData, test_data: StereoData, run_dir: Path,
                       val_data: StereoData | None = None, progress: bool = True, reuse: bool = True) -> dict:
    """Train ``cfg`` into ``run_dir`` (checkpoint.pt, metrics.json) and return its test metrics."""
    run_dir = Path(run_dir)
    metrics_file = run_dir / "metrics.json"
    if reuse and metrics_file.is_file():
        old = json.loads(metrics_file.read_text())
        if _comparable(old.get("config", {})) == _comparable(json.loads(json.dumps(asdict(cfg)))):
            return old
    model, history = train(cfg, train_data, val_data, checkpoint=run_dir / "checkpoint.pt", progress=progress)
    result = {"config": asdict(cfg), "history": history, "test": evaluate(model, test_data, cfg.fb)}
    save_checkpoint(run_dir / "checkpoint.pt", model, cfg, {"history": history, "test": result["test"]})
    write_json(metrics_file, result)
    return result


def run_report(run_dir: Path, train_data: StereoData, test_data: StereoData, base: StereoConfig,
               betas: tuple[float, ...] = (0.0, 0.5, 2.0), ann_activation: str = "sigmoid",
               val_data: StereoData | None = None, progress: bool = True, data_name: str = "",
               finetune_epochs: int | None = None) -> dict:
    """Train/evaluate the sweep and the ANN, write report.json/.md/.png in ``run_dir``; return the report.

    With ``finetune_epochs``, every penalised SNN (beta > 0) is also fine-tuned for that many epochs from
    the beta = 0 network (runs ``snn_beta{b}_ft``), besides being trained from scratch.
    """
    run_dir = Path(run_dir)
    runs: dict[str, dict] = {}
    for beta in betas:
        cfg = replace(base, model="snn", beta=float(beta))
        runs[f"snn_beta{beta:g}"] = train_and_evaluate(cfg, train_data, test_data, run_dir / f"snn_beta{beta:g}",
                                                       val_data, progress)
    if finetune_epochs:
        if "snn_beta0" not in runs:
            raise ValueError("finetune_epochs needs beta 0 in betas (the network to fine-tune)")
        for beta in betas:
            if beta > 0:
                cfg = replace(base, model="snn", beta=float(beta), epochs=int(finetune_epochs),
                              init_from=str(run_dir / "snn_beta0" / "checkpoint.pt"))
                runs[f"snn_beta{beta:g}_ft"] = train_and_evaluate(cfg, train_data, test_data,
                                                                  run_dir / f"snn_beta{beta:g}_ft", val_data, progress)
    ann_cfg = replace(base, model="ann", beta=0.0, activation=ann_activation)
    runs[f"ann_{ann_activation}"] = train_and_evaluate(ann_cfg, train_data, test_data, run_dir / f"ann_{ann_activation}",
                                                       val_data, progress)
    baseline = mean_depth_baseline(train_data, test_data)
    rows = []
    for name, r in runs.items():
        t = r["test"]
        rows.append({"run": name, "model": r["config"]["model"], "beta": r["config"]["beta"],
                     "finetuned": bool(r["config"].get("init_from")), "mde": t["mde"],
                     "one_pixel_accuracy": t["one_pixel_accuracy"],
                     "mean_firing_rate": t.get("mean_firing_rate"),
                     "encoder_firing_rate": t.get("encoder_firing_rate"),
                     "decoder_firing_rate": t.get("decoder_firing_rate")})
    snn0 = runs.get("snn_beta0")
    checks: dict[str, Any] = {}
    if snn0 is not None:
        m0 = snn0["test"]["mde"]
        checks["snn_vs_baseline_reduction"] = 1.0 - m0 / baseline
        checks["snn_mde_at_least_50pct_below_baseline"] = m0 <= 0.5 * baseline
        for row in rows:
            if row["model"] == "snn" and row["beta"] > 0:
                rel = row["mde"] / m0 - 1.0
                row["mde_rise_vs_beta0"] = rel
                checks[f"{row['run']}_firing_below_10pct_and_mde_rise_below_15pct"] = (
                    row["mean_firing_rate"] < 0.10 and rel < 0.15)
    report = {"data": data_name, "n_train": len(train_data), "n_test": len(test_data),
              "input_size": list(train_data.input_size), "mean_depth_baseline_mde": baseline,
              "base_config": asdict(base), "rows": rows, "checks": checks}
    write_json(run_dir / "report.json", report)
    atomic_write_text(run_dir / "report.md", markdown(report))
    plot(report, run_dir / "report.png")
    return report


def markdown(report: dict) -> str:
    """The report's table as Markdown."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f} %"
    lines = [f"# StereoSpike report ({report['data']})", "",
             f"{report['n_train']} training / {report['n_test']} test samples, input {report['input_size']}; "
             f"mean-depth baseline MDE {report['mean_depth_baseline_mde']:.3f} m. Firing = density of nonzero "
             "entries, mean over neuron layers; one-pixel accuracy = |fb/D_hat - fb/D| < 1 px.", "",
             "| run | beta | MDE (m) | 1-px acc. | firing (mean) | encoder | decoder | MDE rise vs beta 0 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        rise = r.get("mde_rise_vs_beta0")
        lines.append(f"| {r['run']} | {r['beta']:g} | {r['mde']:.3f} | {pct(r['one_pixel_accuracy'])} | "
                     f"{pct(r['mean_firing_rate'])} | {pct(r['encoder_firing_rate'])} | "
                     f"{pct(r['decoder_firing_rate'])} | {'-' if rise is None else f'{100 * rise:+.1f} %'} |")
    lines += ["", "Checks: " + ", ".join(f"{k} = {v if isinstance(v, bool) else round(v, 3)}"
                                         for k, v in report["checks"].items()), ""]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Two panels: MDE per run with the baseline; mean firing rate vs MDE over the penalty weights."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    names = [r["run"] for r in rows] + ["mean depth"]
    values = [r["mde"] for r in rows] + [report["mean_depth_baseline_mde"]]
    a.bar(names, values, color=["C0" if r["model"] == "snn" else "C1" for r in rows] + ["0.6"])
    a.set_ylabel("mean depth error (m)")
    a.set_title("test MDE")
    a.tick_params(axis="x", rotation=30)
    snn = [r for r in rows if r["model"] == "snn"]
    scratch = [r for r in snn if not r.get("finetuned")]
    tuned = [r for r in snn if r.get("finetuned") or r["beta"] == 0]
    b.plot([100 * r["mean_firing_rate"] for r in scratch], [r["mde"] for r in scratch], "o-", label="from scratch")
    if len(tuned) > 1:
        b.plot([100 * r["mean_firing_rate"] for r in tuned], [r["mde"] for r in tuned], "s--", label="fine-tuned")
        b.legend()
    for r in snn:
        b.annotate(f"beta={r['beta']:g}", (100 * r["mean_firing_rate"], r["mde"]), textcoords="offset points",
                   xytext=(4, 4))
    b.axvline(10, ls="--", c="0.5")
    b.set_xlabel("mean firing rate (%)")
    b.set_ylabel("mean depth error (m)")
    b.set_title("spike penalty sweep")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
