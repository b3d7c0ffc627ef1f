"""The rule zoo: a population of small networks trained under each learning rule, with their observables logged.

Nayebi et al. (NeurIPS 2020) trained 1,056 networks under four rules (SGD with momentum, Adam, feedback alignment,
information alignment) and asked whether the rule can be told from the networks' observables. Here each network is a
``spikes train`` run (the one trainer, :func:`spikes.training.loop.train`) with an
:class:`~spikes.training.observables.ObservablesLogger`; what varies per network is drawn by :func:`sample_network`
from ``(seed, class, index)``:

- the paper's classes (:data:`PAPER_CLASSES`): ``sgdm`` (rule bptt, SGD momentum 0.9), ``adam`` (bptt, Adam),
  ``fa`` (feedback alignment) and ``ia`` (information alignment: amp + decay + null on Gaussian noise inputs,
  lr_b 1, the calibration of ``benchmarks/bench_alignment.py``), fa and ia with SGD momentum like sgdm; every
  one clips the gradient norm at 1 (without it an IA network's loss became NaN at SGD lr ~0.03).
  Architectures: with probability ``snn_fraction`` an ``mlp_snn`` (LIF, width 32 or 64) on the embedded digits
  events (``train_limit`` 512, 8 time bins), else an ANN ``mlp`` (width 32/64/128, depth 1-3, ReLU or tanh) on one
  of ``datasets`` (digits, wine, moons by default). Learning rate: the optimiser's usual one (:data:`BASE_LR`:
  SGD 0.03, Adam 1e-3) times ``lr_spread ** u``, u uniform in [-1, 1] (``lr_spread`` 1.5 by default; the paper
  kept each rule's standard settings per task, and a tenfold range per class put the classes' weight changes on
  top of each other);
- the spiking rules: ``eprop`` (e-prop on the ``rsnn`` kind: 32 or 64 LIF/ALIF units, digits events pooled to
  17x17, Adam lr in [1e-3, 1e-2]) and ``gt`` (the growth-transform rule on a one-layer ``gt_network``, wine /
  breast_cancer / digits, eta in [3e-5, 1e-3], 20 or 30 iterations);
- batch size 32, 64 or 128 (at most a quarter of the training set), train.seed (it also draws the tabular sets'
  split; the event set is always the embedded one of data seed 0), constant learning rate, ``steps`` steps.

Layout of ``OUT``: ``nets/<class>-<index>/`` (the run directory, ``spec.json`` and ``observables.npz``; a network
with its observables file is finished and skipped, an unfinished one resumes from its checkpoint), and, once all are
done, the zoo file :data:`ZOO_FILE` (``.npz``: one row per layer of every network, ``obs`` float32
``(rows, settings, observables, checkpoints)``, ``label``, ``network``, ``position``, ``spiking``) with
:data:`ZOO_META` (JSON: classes, settings, observables, checkpoint steps, every network's spec and test accuracy).
"""
from __future__ import annotations

import io
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from spikes.io import atomic_write_bytes, atomic_write_json
from spikes.training.observables import ObservablesLogger, ObservablesOptions, load_observables

PAPER_CLASSES = ("sgdm", "adam", "fa", "ia")
SPIKING_CLASSES = ("eprop", "gt")
CLASSES = PAPER_CLASSES + SPIKING_CLASSES
ZOO_FILE, ZOO_META, OBS_FILE, SPEC_FILE = "observables.npz", "observables.json", "observables.npz", "spec.json"
ANN_SETS = ("digits", "wine", "moons")
BASE_LR = {"sgd": 3e-2, "adam": 1e-3}
# training-split sizes (tabular: 0.85 of the 0.75 not held out for test; events: train_limit), to cap the batch
TRAIN_SIZES = {"digits": 1145, "wine": 113, "moons": 637, "breast_cancer": 362, "digits-events": 512}
IA_OPTIONS = {"lr_b": 1.0, "input_noise": "normal"}     # bench_alignment's calibration for short runs


@dataclass(frozen=True)
class ZooOptions:
    """What ``spikes rules zoo`` varies and fixes (see the module docstring)."""

    networks: int = 50                  # per class
    classes: tuple = PAPER_CLASSES
    steps: int = 200
    snn_fraction: float = 0.25
    seed: int = 0
    checkpoints: int = 21
    datasets: tuple = ANN_SETS          # the ANN networks' tabular sets
    lr_spread: float = 1.5

    def __post_init__(self) -> None:
        unknown = [c for c in self.classes if c not in CLASSES]
        if unknown or not self.classes:
            raise ValueError(f"rules zoo: class {unknown[0] if unknown else None!r} is unknown: choose among "
                             f"{', '.join(CLASSES)}")
        for name, value, low in (("networks", self.networks, 1), ("steps", self.steps, 2),
                                 ("checkpoints", self.checkpoints, 2)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"rules zoo: {name} must be an integer >= {low}, got {value!r}")
        bad_sets = [d for d in self.datasets if d not in ANN_SETS]
        if bad_sets or not self.datasets:
            raise ValueError(f"rules zoo: dataset {bad_sets[0] if bad_sets else None!r} is not one of the ANN sets: "
                             f"choose among {', '.join(ANN_SETS)}")
        if not (isinstance(self.lr_spread, (int, float)) and self.lr_spread >= 1.0):
            raise ValueError(f"rules zoo: lr_spread must be a number >= 1, got {self.lr_spread!r}")
        if not 0.0 <= self.snn_fraction <= 1.0:
            raise ValueError(f"rules zoo: snn_fraction must be in [0, 1], got {self.snn_fraction!r}")


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(10 ** rng.uniform(math.log10(low), math.log10(high)))


def sample_network(cls: str, index: int, options: ZooOptions) -> dict[str, Any]:
    """The spec of network ``index`` of class ``cls``: ``{name, cls, index, arch, tables}`` with ``tables`` the
    four run-config tables (``model``, ``rule``, ``data``, ``train``); a pure function of (seed, class, index)."""
    rng = np.random.default_rng([options.seed, CLASSES.index(cls), index])
    train: dict[str, Any] = {"scheduler": "constant", "epochs": 100000, "max_steps": options.steps,
                             "checkpoint_every": 0, "progress": False, "seed": int(rng.integers(2 ** 31))}
    data: dict[str, Any] = {}
    if cls in PAPER_CLASSES:
        snn = rng.random() < options.snn_fraction
        if snn:
            arch = "snn"
            model = {"kind": "mlp_snn", "width": int(rng.choice([32, 64])), "neuron": "lif"}
            data = {"dataset": "digits-events", "n_time_bins": 8, "train_limit": 512, "test_limit": 128, "seed": 0}
        else:
            arch = "ann"
            model = {"kind": "mlp", "width": int(rng.choice([32, 64, 128])), "depth": int(rng.choice([1, 2, 3])),
                     "activation": str(rng.choice(["relu", "tanh"]))}
            data = {"dataset": str(options.datasets[int(rng.integers(len(options.datasets)))])}
        rule = {"name": {"sgdm": "bptt", "adam": "bptt", "fa": "fa", "ia": "ia"}[cls], "grad_clip": 1.0}
        if cls in ("fa", "ia"):
            # B with W's spread: the default Kaiming-uniform B is sqrt(6) narrower than the mlp kind's He-normal W,
            # so the error shrank ~2.4x per layer back and FA/IA barely trained their first layers (eb74601)
            rule.update(log_every=0, feedback_init="weight")
        if cls == "ia":
            rule.update(IA_OPTIONS)
        optimizer = "adam" if cls == "adam" else "sgd"
        train.update(optimizer=optimizer, lr=float(BASE_LR[optimizer] * options.lr_spread ** rng.uniform(-1.0, 1.0)))
    elif cls == "eprop":
        arch = "rsnn"
        n_rec = int(rng.choice([32, 64]))
        model = {"kind": "rsnn", "n_rec": n_rec, "n_adaptive": n_rec // 2}
        data = {"dataset": "digits-events", "n_time_bins": 8, "pool": 2, "train_limit": 512, "test_limit": 128,
                "seed": 0}
        rule = {"name": "eprop"}
        train.update(optimizer="adam", lr=_log_uniform(rng, 1e-3, 1e-2))
    else:
        arch = "gt"
        model = {"kind": "gt_network", "architecture": "network1", "iterations": int(rng.choice([20, 30])),
                 "eta1": _log_uniform(rng, 3e-5, 1e-3)}
        data = {"dataset": str(rng.choice(["wine", "breast_cancer", "digits"]))}
        rule = {"name": "gt"}
    batch = int(rng.choice([32, 64, 128]))
    train["batch_size"] = max(8, min(batch, TRAIN_SIZES.get(data["dataset"], batch) // 4))
    return {"name": f"{cls}-{index:04d}", "cls": cls, "index": index, "arch": arch,
            "tables": {"model": model, "rule": rule, "data": data, "train": train}}


def population(options: ZooOptions) -> list[dict[str, Any]]:
    """Every network's spec, class by class."""
    return [sample_network(c, i, options) for c in options.classes for i in range(options.networks)]


def train_network(spec: dict[str, Any], out: str | os.PathLike, threads: int = 1, checkpoints: int = 21,
                  data_root: str | None = None) -> dict[str, Any]:
    """Train one network of the zoo in ``out/nets/<name>`` (resuming a started one); returns ``{name, seconds,
    test_accuracy}``. A network whose observables file exists is not trained again."""
    import torch

    from spikes.training.config import resolve_config
    from spikes.training.loop import train

    run_dir = Path(out) / "nets" / spec["name"]
    done = run_dir / OBS_FILE
    summary_path = run_dir / "summary.json"
    if done.exists() and summary_path.exists():
        return {"name": spec["name"], "seconds": 0.0,
                "test_accuracy": json.loads(summary_path.read_text()).get("test_accuracy"), "skipped": True}
    torch.set_num_threads(threads)
    tables = json.loads(json.dumps(spec["tables"]))
    tables["train"]["threads"] = threads
    if data_root:
        tables["data"]["root"] = data_root
    config = resolve_config(None, tables)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / SPEC_FILE, spec)
    t0 = time.perf_counter()
    logger = ObservablesLogger(done, ObservablesOptions(checkpoints=checkpoints, seed=spec["index"]))
    summary = train(config, run_dir, resume=True, log=lambda m: None, callbacks=[logger])
    if not done.exists():
        raise RuntimeError(f"rules zoo: network {spec['name']} ended after {summary['steps']} steps without "
                           f"measuring all {checkpoints} checkpoints (see {run_dir})")
    return {"name": spec["name"], "seconds": time.perf_counter() - t0, "test_accuracy": summary.get("test_accuracy"),
            "skipped": False}


def run_zoo(out: str | os.PathLike, options: ZooOptions, jobs: int = 1, threads: int = 1, progress: bool = True,
            log: Callable[[str], None] = print, data_root: str | None = None) -> Path:
    """Train every network of :func:`population` (``jobs`` processes of ``threads`` threads; finished networks are
    skipped) with a progress bar, then write the zoo file (:func:`collect`). Returns its path."""
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = population(options)
    t0 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(specs), desc="rules zoo", unit="net", disable=not progress, dynamic_ncols=True)
    try:
        if jobs <= 1:
            for spec in specs:
                results[spec["name"]] = train_network(spec, out, threads, options.checkpoints, data_root)
                bar.update(1)
                bar.set_postfix(net=spec["name"])
        else:
            import multiprocessing

            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(train_network, s, out, threads, options.checkpoints, data_root): s
                           for s in specs}
                for fut in as_completed(futures):
                    results[futures[fut]["name"]] = fut.result()
                    bar.update(1)
                    bar.set_postfix(net=futures[fut]["name"])
    finally:
        bar.close()
    trained = [r for r in results.values() if not r.get("skipped")]
    log(f"rules zoo: {len(trained)} networks trained, {len(specs) - len(trained)} reused, "
        f"{time.perf_counter() - t0:.1f} s")
    return collect(out, specs, options, generation_s=time.perf_counter() - t0)


def collect(out: str | os.PathLike, specs: list[dict[str, Any]], options: ZooOptions | None = None,
            generation_s: float | None = None) -> Path:
    """Gather the networks' observables files into the zoo file (one row per layer; module docstring)."""
    out = Path(out)
    classes = list(options.classes) if options is not None else sorted({s["cls"] for s in specs}, key=CLASSES.index)
    obs, label, network, position, spiking, layer_names, nets = [], [], [], [], [], [], []
    steps, settings, observables = None, None, None
    for k, spec in enumerate(specs):
        run_dir = out / "nets" / spec["name"]
        data = load_observables(run_dir / OBS_FILE)
        summary = json.loads((run_dir / "summary.json").read_text())
        if steps is None:
            steps, settings, observables = data["steps"], data["settings"], data["meta"]["observables"]
        elif data["obs"].shape[-1] != len(steps) or data["obs"].shape[0] != len(settings):
            raise ValueError(f"rules zoo: {run_dir / OBS_FILE} has {data['obs'].shape[-1]} checkpoints and "
                             f"{data['obs'].shape[0]} settings, the others {len(steps)} and {len(settings)}")
        for li, layer in enumerate(data["meta"]["layers"]):
            obs.append(data["obs"][:, li])
            label.append(classes.index(spec["cls"]))
            network.append(k)
            position.append(layer["position"])
            spiking.append(layer["spiking"])
            layer_names.append(layer["name"])
        nets.append({**spec, "test_accuracy": summary.get("test_accuracy"), "wall_time_s": summary.get("wall_time_s"),
                     "layers": len(data["meta"]["layers"])})
    buf = io.BytesIO()
    np.savez_compressed(buf, obs=np.stack(obs).astype(np.float32), label=np.asarray(label), network=np.asarray(network),
                        position=np.asarray(position), spiking=np.asarray(spiking, dtype=bool))
    atomic_write_bytes(out / ZOO_FILE, buf.getvalue())
    atomic_write_json(out / ZOO_META, {
        "classes": classes, "settings": np.asarray(settings).tolist(), "observables": list(observables),
        "steps": np.asarray(steps).tolist(), "layer_names": layer_names, "networks": nets,
        "options": asdict(options) if options is not None else None, "generation_s": generation_s})
    return out / ZOO_FILE
