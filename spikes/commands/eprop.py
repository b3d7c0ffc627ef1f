"""``spikes eprop cue|digits``: train recurrent LIF/ALIF SNNs with e-prop (three feedbacks) or BPTT, and compare.

Each (neurons, rule) pair is one run of the trainer (:func:`spikes.training.loop.train`) on the model kind
``rsnn`` with e-prop's settings for the task:

- ``cue``: evidence accumulation (:class:`spikes.datasets.tasks.cue.CueSet`, step ``--dt`` ms; T = 2250 steps at
  1 ms, 225 at 10 ms); the network of e-prop's Fig. 3: 100 neurons (``alif``: 50 LIF + 50 ALIF, ``lif``: 100
  LIF), tau_m 20, tau_a 2000, tau_out 20 ms, v_th 0.6, n_ref round(5 ms / dt) steps; ``--iterations`` batches of
  ``--batch`` trials, batch k drawn from seed ``seed * 100003 + k``, test set ``--test-batch`` trials from
  ``seed * 100003 + 99991``; loss on the recall window.
- ``digits``: the embedded digits event set (``digits-events`` of sensor seed 0 whatever ``--seed``, 20 bins of
  15 ms, 2 x 34 x 34 inputs flattened), tau_a 200 ms, n_ref 0; ``--iterations`` epochs; cross-entropy at every
  step, decision by the largest mean softmax.

Rules: ``eprop-symmetric``, ``eprop-random``, ``eprop-adaptive`` (rule ``eprop`` with that feedback; adaptive
feedback decays by ``lr * --weight-decay`` per update) and ``bptt``. Both minimise the task loss plus the
firing-rate regulariser ``c_reg sum_j (f_j - 10 Hz)^2``, with Adam at a constant learning rate.

Prints one line per run and a Markdown table of test errors; ``--out`` writes the rows as JSON (after each run):
task, neurons, rule, dt_ms, iterations, batch, test_error, train_error_last20, final_rate_hz, seconds, and per
training step ``loss`` (the objective's: task loss plus regulariser) and ``error`` (0/1 error of the batch). Run
directories (config.toml, checkpoint.pt, metrics.jsonl, summary.json) go under ``--runs`` (kept), or a temporary
folder that is removed.

Example (the shortened task, dt = 10 ms, T = 225 steps)::

    spikes eprop cue --rules eprop-symmetric,eprop-random,eprop-adaptive,bptt --neurons alif,lif \\
        --dt 10 --iterations 200 --out eprop_cue.json
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from spikes.io import atomic_write_json
from spikes.learning.rule import StepOutput
from spikes.training.callbacks import Callback
from spikes.training.config import RunConfig, resolve_config
from spikes.training.loop import CHECKPOINT_FILE, train

HELP = "Train LIF/ALIF recurrent SNNs with e-prop (symmetric/random/adaptive) or BPTT on the cue task or digits"
RULES = ("eprop-symmetric", "eprop-random", "eprop-adaptive", "bptt")
NEURONS = {"alif": 50, "lif": 0}                       # ALIF neurons of the 100
N_REC, F_TARGET = 100, 10.0
DIGITS_BINS, DIGITS_MS = 20, 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=["cue", "digits"],
                        help="cue: evidence accumulation; digits: the embedded digits event set (--neurons, "
                             "--iterations = epochs, --dt ignored: 20 bins of 15 ms)")
    parser.add_argument("--rules", default="eprop-symmetric", help=f"comma-separated: {', '.join(RULES)}")
    parser.add_argument("--neurons", default="alif", help="comma-separated: alif (50 LIF + 50 ALIF), lif (100 LIF)")
    parser.add_argument("--dt", type=float, default=1.0, help="step in ms (1 = paper, T = 2250 steps)")
    parser.add_argument("--iterations", type=int, default=200, help="cue: training batches; digits: epochs")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--c-reg", type=float, default=1.0, help="firing-rate regulariser weight (target 10 Hz)")
    parser.add_argument("--weight-decay", type=float, default=1e-2, help="adaptive feedback decay (x lr)")
    parser.add_argument("--test-batch", type=int, default=512, help="cue: test trials")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a loaded machine: e-prop's ops are small)")
    parser.add_argument("--out", default=None, help="write the results as JSON here (atomically)")
    parser.add_argument("--runs", type=Path, default=None,
                        help="keep the run directories here (RUNS/<task>_<neurons>_<rule>/); default: a temporary "
                             "folder, removed at the end")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _names(text: str, allowed, flag: str, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in allowed:
            raise SystemExit(f"{flag}: unknown {what} {n!r}; choose from {', '.join(allowed)}")
    if not names:
        raise SystemExit(f"{flag}: name at least one {what}")
    return names


def run_config(args: argparse.Namespace, neurons: str, rule: str) -> RunConfig:
    """The trainer's config of one run: model ``rsnn`` with the task's settings, the rule, Adam at constant lr."""
    digits = args.task == "digits"
    dt = DIGITS_MS / DIGITS_BINS if digits else args.dt
    model = {"kind": "rsnn", "n_rec": N_REC, "n_adaptive": NEURONS[neurons], "dt": dt, "tau_m": 20.0,
             "tau_a": 200.0 if digits else 2000.0, "tau_out": 20.0, "v_th": 0.6,
             "n_ref": 0 if digits else int(round(5.0 / dt)), "c_reg": args.c_reg, "f_target": F_TARGET}
    if rule == "bptt":
        rule_table: dict[str, Any] = {"name": "bptt"}
    else:
        rule_table = {"name": "eprop", "feedback": rule.split("-", 1)[1], "weight_decay": args.weight_decay}
    if digits:   # the simulated sensor of seed 0, whatever the weights' seed (as the first release did)
        data = {"dataset": "digits-events", "n_time_bins": DIGITS_BINS, "seed": 0}
    else:        # block k of the training trials is batch k of the first release's loop; one test block
        data = {"dataset": "cue", "step_ms": dt, "block": args.batch, "train_limit": args.iterations * args.batch,
                "test_limit": args.test_batch}
    return resolve_config(None, {
        "model": model, "rule": rule_table, "data": data,
        "train": {"epochs": args.iterations if digits else 1, "batch_size": args.batch, "lr": args.lr,
                  "optimizer": "adam", "weight_decay": 0.0, "scheduler": "constant", "seed": args.seed,
                  "checkpoint_every": 0, "threads": max(1, args.threads), "progress": not args.no_progress}})


class Curves(Callback):
    """Per training step: the loss, the batch's 0/1 error and the firing rate in Hz (spikes per step x 1000 / dt)."""

    def __init__(self, dt: float):
        self.dt = dt
        self.loss: list[float] = []
        self.error: list[float] = []
        self.rate_hz: list[float] = []

    def on_step_end(self, state, out: StepOutput) -> None:
        self.loss.append(float(out.loss))
        self.error.append(1.0 - state.last_metrics["accuracy"])
        self.rate_hz.append(float(out.output[1].detach().float().mean()) * 1000.0 / self.dt)


def train_one(args: argparse.Namespace, neurons: str, rule: str, run_dir: Path) -> dict[str, Any]:
    """One run; returns its row of the results."""
    if (run_dir / CHECKPOINT_FILE).exists():
        raise SystemExit(f"--runs: {run_dir} already holds a run; name another --runs folder")
    config = run_config(args, neurons, rule)
    dt = config.model_options.dt
    curves = Curves(dt)
    summary = train(config, run_dir, callbacks=[curves])
    last = curves.error[-20:]
    return {"task": args.task, "neurons": neurons, "rule": rule, "dt_ms": dt, "iterations": args.iterations,
            "batch": args.batch, "test_error": 1.0 - summary["test_accuracy"],
            "train_error_last20": sum(last) / len(last), "final_rate_hz": curves.rate_hz[-1],
            "seconds": summary["wall_time_s"], "loss": curves.loss, "error": curves.error}


def run(args: argparse.Namespace) -> int:
    rules = _names(args.rules, RULES, "--rules", "rule")
    neurons = _names(args.neurons, tuple(NEURONS), "--neurons", "kind")
    if args.iterations < 1 or args.batch < 1 or args.test_batch < 1:
        raise SystemExit("--iterations, --batch and --test-batch must be >= 1")
    results = []
    with tempfile.TemporaryDirectory(prefix="spikes-eprop-") as tmp:
        root = args.runs if args.runs is not None else Path(tmp)
        for n in neurons:
            for r in rules:
                row = train_one(args, n, r, root / f"{args.task}_{n}_{r}")
                if args.runs is not None:
                    row["run_dir"] = str(root / f"{args.task}_{n}_{r}")
                results.append(row)
                print(f"{n:5s} {r:16s} test error {100 * row['test_error']:5.1f} %  "
                      f"(train, last 20 it. {100 * row['train_error_last20']:5.1f} %)  "
                      f"{row['seconds']:7.1f} s", flush=True)
                if args.out:
                    atomic_write_json(args.out, results)
    print("\n| neurons | rule | test error |\n|---|---|---|")
    for res in results:
        print(f"| {res['neurons']} | {res['rule']} | {100 * res['test_error']:.1f} % |")
    return 0
