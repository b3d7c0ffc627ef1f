"""StereoSpike runs on the one trainer, and the report: SNN vs ANN error, firing rate vs error over penalty weights.

Every run is a :class:`~spikes.training.config.RunConfig` trained by :func:`spikes.training.loop.train` in its own
run directory (config.toml, checkpoint.pt, metrics.jsonl, summary.json)::

    [model] kind = "stereospike", snn (false: the ANN twin), base, levels, n_res, neuron, activation, lam, ...
    [rule]  name = "bptt"
    [data]  dataset = "stereo-embedded" or "stereo:PATH" (an MVSEC-layout file or a folder of MVSEC files)
    [train] epochs, lr, batch_size, scheduler = "step" (lr halved at the paper's milestones, 8, 42, 60 of 70
            epochs as fractions of the run), spike_penalty = beta, init_from (fine-tuning), seed, threads

After training, :func:`train_and_evaluate` measures the checkpoint on the test split (:func:`measure_stereo`:
:func:`spikes.models.stereospike.metrics.evaluate`, i.e. MDE, one-pixel accuracy with the data's focal length x
baseline, per-unit firing rates = density of nonzero outputs, under a SpikeProbe for the synaptic operations)
and adds it to ``summary.json``: ``test`` (the metrics), and the run-summary keys ``per_layer`` (conv rows with
synops per sample, unit rows with firing rates), ``firing_rates``, ``mean_firing_rate``, ``raster`` and ``label``
replace the trainer's (the depth report's own rows: per unit, with the encoder/decoder split). A finished run is reused when
its ``summary.json`` holds the same config (``train.progress`` and ``train.checkpoint_every`` aside); a run
directory holding a checkpoint without it is resumed (the trainer refuses a config that differs in a key that
cannot change on resume).

:func:`run_report` trains (or reuses) one StereoSpike per penalty weight ``beta``, optionally fine-tunes each
penalised one from the beta = 0 network (``train.init_from``), and one ANN twin (``model.snn = false``),
evaluates them next to the mean-depth baseline (predict the training set's mean depth everywhere) and writes
``report.json`` (all figures), ``report.md`` (table) and ``report.png`` (MDE bars, firing rate vs MDE) into the
report's directory. matplotlib is imported only inside :func:`plot` (a heavy optional dependency).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import torch

from spikes.io import atomic_write, atomic_write_json, atomic_write_text
from spikes.metrics import SpikeProbe
from spikes.models.stereospike.metrics import evaluate, mean_depth_baseline
from spikes.options import ConfigError
from spikes.pipeline.activity import raster_dict
from spikes.training.checkpoint import load_model
from spikes.training.config import RunConfig, TrainOptions, config_from_dict
from spikes.training.data import open_dataset
from spikes.training.loop import CHECKPOINT_FILE, SUMMARY_FILE, train

# the paper's schedule: lr halved after epochs 8, 42 and 60 of 70 (the [train] table's default milestones)
PAPER_MILESTONES = tuple(TrainOptions().milestones)
# keys of a run's config that change nothing it computes (a run is reused across them)
NOT_COMPARED = {("train", "progress"), ("train", "checkpoint_every")}


def dataset_name(data: str | os.PathLike) -> str:
    """The ``data.dataset`` of ``spikes stereo --data``: 'embedded' -> 'stereo-embedded'; a file or folder ->
    'stereo:ABSOLUTE_PATH' (names that are already 'stereo-embedded' / 'stereo:...' are kept)."""
    data = str(data)
    if data in ("embedded", "stereo-embedded"):
        return "stereo-embedded"
    if data.startswith("stereo:"):
        return data
    return f"stereo:{Path(data).expanduser().resolve()}"


def stereo_config(model: dict[str, Any] | None = None, train: dict[str, Any] | None = None,
                  data: str | os.PathLike = "embedded", data_options: dict[str, Any] | None = None,
                  source: str = "stereo run") -> RunConfig:
    """The run config of one StereoSpike run: ``model`` the [model] options, ``train`` the [train] keys (scheduler
    'step' at :data:`PAPER_MILESTONES` unless given), ``data`` 'embedded' or a path, ``data_options`` more [data]
    keys (cache_dir, train_limit, test_limit). Every key is validated (:class:`spikes.options.ConfigError`)."""
    tables = {"model": {"kind": "stereospike", **(model or {})}, "rule": {"name": "bptt"},
              "data": {"dataset": dataset_name(data), **(data_options or {})},
              "train": {"scheduler": "step", "milestones": list(PAPER_MILESTONES), **(train or {})}}
    return config_from_dict(tables, source)


def variant(base: RunConfig, model: dict[str, Any] | None = None, train: dict[str, Any] | None = None) -> RunConfig:
    """``base`` with some [model] and [train] keys changed (validated again)."""
    tables = base.to_dict()
    tables["model"].update(model or {})
    tables["train"].update(train or {})
    return config_from_dict(tables, "stereo report")


def open_splits(config: RunConfig):
    """The ``(train, test)`` sets of ``config`` (:class:`spikes.training.data.StereoSet`)."""
    return tuple(open_dataset(config.dataset, split, config.data, config.data_root, config.train.seed)
                 for split in ("train", "test"))


def _comparable(tables: dict[str, Any] | None) -> dict[str, Any]:
    tables = json.loads(json.dumps(tables or {}))          # tuples -> lists, as summary.json holds them
    return {t: {k: v for k, v in values.items() if (t, k) not in NOT_COMPARED} for t, values in tables.items()}


def finished_run(config: RunConfig, run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The summary of a finished, evaluated run of ``config`` in ``run_dir``, or None."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not summary.get("completed") or "test" not in summary:
        return None
    return summary if _comparable(summary.get("config")) == _comparable(config.to_dict()) else None


def run_label(config: RunConfig) -> str:
    """'StereoSpike beta=0.5', 'StereoSpike beta=2 (fine-tuned)', 'StereoSpike ANN twin (sigmoid)'."""
    if not config.model_options.snn:
        return f"StereoSpike ANN twin ({config.model_options.activation})"
    return f"StereoSpike beta={config.train.spike_penalty:g}" + (" (fine-tuned)" if config.train.init_from else "")


def measure_stereo(model, data, fb: float | None = None, batch_size: int = 8) -> dict[str, Any]:
    """One pass over ``data`` (:class:`~spikes.models.stereospike.data.StereoData`) under a SpikeProbe:
    ``test`` = :func:`~spikes.models.stereospike.metrics.evaluate`'s metrics; ``per_layer`` = the summary rows,
    synaptic layers first (SpikeProbe: synops per sample), then every spiking unit (firing rate = density of its
    binary output, one step per sample, neurons = C x H x W); ``raster`` = the first unit's spikes on the first
    sample (None for the ANN twin)."""
    with SpikeProbe(model, batch_dim=0) as probe:
        result = evaluate(model, data, fb, batch_size)
    rows = [r for r in probe.summary_rows() if r["firing_rate"] is None]
    rates = result.get("firing_rates", {})
    rows += [{"layer": k, "firing_rate": r, "density": r, "synops": None, "neurons": result["neurons"][k],
              "steps": 1} for k, r in rates.items()]
    raster = None
    if rates:
        with torch.no_grad():
            out = model(data.batch([0])[0])
        first = model.unit_names[0]
        raster = raster_dict(first, out.activations[first][0].reshape(1, -1).numpy())
    return {"test": result, "per_layer": rows, "raster": raster}


def _epochs_done(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / SUMMARY_FILE).read_text()).get("epochs_done", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def train_and_evaluate(config: RunConfig, run_dir: str | os.PathLike, train_set=None, test_set=None,
                       reuse: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``config`` in ``run_dir`` with the one trainer (module docstring) and return its summary, with the
    test split's depth metrics under ``test``. ``reuse``: return a finished run of the same config as it is, and
    resume a run directory that holds a checkpoint; without it an existing checkpoint is an error
    (``FileExistsError``). ``train_set`` / ``test_set``: the opened splits (default: ``config``'s)."""
    run_dir = Path(run_dir)
    if reuse:
        done = finished_run(config, run_dir)
        if done is not None:
            return done
        before = _epochs_done(run_dir)
        if before > config.train.epochs:
            raise ConfigError(f"{run_dir} holds a run of {before} epochs, more than train.epochs = "
                              f"{config.train.epochs}: use another run directory")
    if train_set is None or test_set is None:
        train_set, test_set = open_splits(config)
    summary = train(config, run_dir, resume=reuse and (run_dir / CHECKPOINT_FILE).exists(), log=log,
                    train_set=train_set, test_set=test_set)
    model, _, ckpt = load_model(run_dir / CHECKPOINT_FILE)
    m = measure_stereo(model, test_set.data, ckpt["model"]["kwargs"].get("fb"), 2 * config.train.batch_size)
    depth = m["test"]
    summary = {**summary, "test": depth, "metric": depth["mde"], "label": run_label(config), "per_layer": m["per_layer"],
               "mean_firing_rate": depth.get("mean_firing_rate"), "firing_rates": depth.get("firing_rates", {}),
               **({"raster": m["raster"]} if m["raster"] is not None else {})}
    atomic_write_json(run_dir / SUMMARY_FILE, summary, indent=1)
    return summary


def run_report(run_dir: str | os.PathLike, base: RunConfig, betas: tuple[float, ...] = (0.0, 0.5, 2.0),
               finetune_epochs: int | None = None, log: Callable[[str], None] = print,
               train_set=None, test_set=None) -> dict[str, Any]:
    """Train/evaluate the sweep and the ANN twin of ``base`` in ``run_dir/<run>``, write report.json/.md/.png in
    ``run_dir``; return the report.

    Runs: ``snn_beta{b}`` (``train.spike_penalty = b``, from scratch) for every ``b`` in ``betas``; with
    ``finetune_epochs``, ``snn_beta{b}_ft`` for every ``b > 0``: that many epochs from the beta = 0 network's
    checkpoint (``train.init_from``); ``ann_{activation}`` (``model.snn = false``, no penalty).
    """
    run_dir = Path(run_dir)
    if train_set is None or test_set is None:
        train_set, test_set = open_splits(base)
    runs: dict[str, dict] = {}

    def run(name: str, config: RunConfig) -> None:
        runs[name] = train_and_evaluate(config, run_dir / name, train_set, test_set, log=log)

    for beta in betas:
        run(f"snn_beta{beta:g}", variant(base, {"snn": True}, {"spike_penalty": float(beta)}))
    if finetune_epochs:
        if "snn_beta0" not in runs:
            raise ValueError("finetune_epochs needs beta 0 in betas (the network to fine-tune)")
        start = str((run_dir / "snn_beta0" / CHECKPOINT_FILE).resolve())
        for beta in betas:
            if beta > 0:
                run(f"snn_beta{beta:g}_ft", variant(base, {"snn": True}, {"spike_penalty": float(beta),
                                                                          "epochs": int(finetune_epochs),
                                                                          "init_from": start}))
    activation = base.model_options.activation
    run(f"ann_{activation}", variant(base, {"snn": False}, {"spike_penalty": 0.0}))

    baseline = mean_depth_baseline(train_set.data, test_set.data)
    rows = []
    for name, r in runs.items():
        t, cfg = r["test"], r["config"]
        rows.append({"run": name, "model": "snn" if cfg["model"]["snn"] else "ann",
                     "beta": float(cfg["train"]["spike_penalty"]), "finetuned": bool(cfg["train"].get("init_from")),
                     "mde": t["mde"], "one_pixel_accuracy": t["one_pixel_accuracy"],
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
    report = {"data": base.dataset, "n_train": len(train_set), "n_test": len(test_set),
              "input_size": list(train_set.input_size), "mean_depth_baseline_mde": baseline,
              "base_config": base.to_dict(), "rows": rows, "checks": checks}
    atomic_write_json(run_dir / "report.json", report, indent=2)
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
