"""The end-to-end demo job: four flagship models trained, measured, deployed where possible, compared.

``run_demo(out_dir, quick=False)`` runs the stages in order and writes into ``out_dir``:

- one run directory per trained model (``conv_snn/``, ``eprop_alif/``, ``stereospike_beta0/``, ...), each
  with a ``summary.json`` in the comparison schema (:mod:`spikes.reports.summary`), so
  ``spikes compare out_dir/*/`` works on them later;
- ``comparison.md`` (the table) and ``report.html`` (the single-file HTML report), both written atomically.

A stage whose dependency (a colleague's module) is not importable is ``skipped`` with the reason and
produces no numbers; a stage that raises is ``failed`` with the error; the others still run. ``quick``
shrinks every stage (tiny data, one epoch) for tests: its numbers only show the plumbing works.
"""
from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tqdm.auto import tqdm

from spikes.io import atomic_write_text
from spikes.pipeline.backends import deploy_hook
from spikes.reports.html import write_report
from spikes.reports.table import comparison_rows, format_table
from spikes.pipeline.record import StageResult
from spikes.reports.summary import RunSummary


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: ``run(out_dir, quick, progress, backends) -> StageResult`` and what it imports."""

    name: str
    title: str
    run: str                                  # "module:function"
    requires: tuple[str, ...]                 # "module" or "module:attribute"


STAGES: tuple[Stage, ...] = (
    Stage("conv_snn", "conv SNN (surrogate gradients) on digits events", "spikes.pipeline.classifier:run_classifier_stage",
          ("spikes.training:train", "spikes.datasets.digits:digits_frames", "spikes.models.classifiers:build_classifier",
           "spikes.metrics:SpikeProbe")),
    Stage("eprop_alif", "ALIF recurrent SNN trained with e-prop on digits events", "spikes.pipeline.eprop:run_eprop_stage",
          ("spikes.learning.eprop_rule:Eprop", "spikes.models.rsnn:RSNN", "spikes.datasets.digits:digits_frames")),
    Stage("stereospike", "StereoSpike on the embedded stereo depth set", "spikes.pipeline.stereo:run_stereo_stage",
          ("spikes.pipeline.stereo_report:train_and_evaluate", "spikes.datasets:MVSECStereo",
           "spikes.datasets:stereo_depth_file")),
    Stage("gt", "growth-transform network on scikit-learn wine", "spikes.pipeline.gt:run_gt_stage",
          ("spikes.models.gt_network:GTNetwork", "spikes.learning.gt_local:GTLocal")),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


@dataclass
class DemoResults:
    """Everything the demo produced: stage records, all run summaries, the table text and the report path."""

    out_dir: Path
    stages: list[StageResult]
    table: str = ""
    report: Path | None = None
    seconds: float = 0.0

    @property
    def summaries(self) -> list[RunSummary]:
        return [s for st in self.stages for s in st.summaries]

    @property
    def skipped(self) -> list[StageResult]:
        return [st for st in self.stages if st.status != "ok"]


def missing_dependency(requires: Sequence[str]) -> str | None:
    """The first ``module[:attribute]`` that cannot be imported, as a message; None if all are there."""
    for req in requires:
        mod, _, attr = req.partition(":")
        try:
            m = importlib.import_module(mod)
        except ImportError as e:
            return f"{mod} is not importable ({e})"
        if attr and not hasattr(m, attr):
            return f"{mod}.{attr} is not available yet"
    return None


def run_stage(stage: Stage, out_dir: Path, quick: bool, progress: bool, backends: Callable | None) -> StageResult:
    """Run one stage: skipped if a dependency is missing, failed (with the error) if it raises."""
    t0 = time.perf_counter()
    missing = missing_dependency(stage.requires)
    if missing:
        return StageResult(stage.name, stage.title, status="skipped", reason=missing)
    mod, _, fn = stage.run.partition(":")
    try:
        return getattr(importlib.import_module(mod), fn)(out_dir, quick=quick, progress=progress, backends=backends)
    except Exception as e:  # a demo reports a broken stage and goes on with the others
        traceback.print_exc(file=sys.stderr)
        return StageResult(stage.name, stage.title, status="failed", reason=f"{type(e).__name__}: {e}",
                           seconds=time.perf_counter() - t0)


def run_demo(out_dir: str | os.PathLike, quick: bool = False, stages: Sequence[str] | None = None,
             progress: bool = True, deploy: bool = True, lava_samples: int | None = None,
             log: Callable[[str], None] = print) -> DemoResults:
    """Run the demo stages (default: all) into ``out_dir``; write comparison.md and report.html; return results.

    ``deploy``: run deployable models on ``sim`` and ``lava-fixed`` (``lava_samples`` test samples on
    lava-fixed; default all, which the StereoSpike stage caps, 8 in quick mode). ``log`` gets one line per
    finished stage.
    """
    t0 = time.perf_counter()
    names = list(stages or STAGE_NAMES)
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"run_demo: unknown stage(s) {unknown}; choose from {list(STAGE_NAMES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_lava = lava_samples if lava_samples is not None else (8 if quick else None)
    hook = deploy_hook(lava_samples=n_lava, progress=progress) if deploy else None
    results = DemoResults(out, [])
    for stage in tqdm([s for s in STAGES if s.name in names], desc="demo", unit="stage", disable=not progress):
        r = run_stage(stage, out, quick, progress, hook)
        results.stages.append(r)
        log(r.line())
    summaries = results.summaries
    notes = [f"{'QUICK MODE (tiny data, 1 epoch): numbers only check the plumbing. ' if quick else ''}"
             f"Stages: " + "; ".join(f"{st.name}: {st.status}" + (f" ({st.reason})" if st.reason else "")
                                      for st in results.stages)]
    notes += [n for st in results.stages for n in st.notes]
    if summaries:
        results.table = format_table(comparison_rows(summaries))
        atomic_write_text(out / "comparison.md", results.table + "\n\n" + "\n\n".join(notes) + "\n")
        results.report = write_report(out / "report.html", summaries, title="spikes demo: sparsity comparison",
                                      notes=notes)
    results.seconds = time.perf_counter() - t0
    return results
