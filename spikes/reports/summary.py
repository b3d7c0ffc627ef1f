"""The run summary that ``spikes compare`` and the HTML report read: schema, validation, loading.

``summary.json`` of a run directory (schema ``spikes.summary/1``; keys not listed are ignored)::

    {
      "model": "conv_snn",              required, str: model name
      "task": "digits-events",          required, str: data set / task
      "metric_name": "accuracy",        required, str: task metric (accuracy, mean_depth_error_m, ...)
      "metric": 0.91,                   required, number: task metric of the torch model on the test set
      "higher_is_better": true,         optional (default true): direction of the metric
      "label": "conv_snn lam=1e-3",     optional (default: model): display name of this run
      "spike_penalty": 0.001,           optional number: firing-rate penalty weight used in training
      "per_layer": [                    required, one row per probed layer, in model order:
        {"layer": "features.1",         required, str
         "firing_rate": 0.04,           spikes / (neuron * step), null for non-spiking layers
         "density": 0.04,               nonzero outputs / outputs, optional
         "synops": 5120.0,              synaptic operations per sample, null for non-synaptic layers
         "neurons": 512, "steps": 8}    optional: neurons per sample and time steps (for the energy estimate)
      ],
      "backends": {                     optional: the same model deployed, one entry per backend
        "sim": {"metric": 0.91, "per_layer": [...same row format...],
                "samples": 359,         optional: test samples the backend ran (if fewer than torch's)
                "reference_rates": {"features.1": 0.041}},   optional: torch's rates on those samples
        "lava-fixed": {"metric": 0.90, "per_layer": [...]}
      },
      "raster": {"layer": "features.1", "steps": 8, "neurons": 512,   optional: spikes of one sample,
                 "t": [0, 0, 3], "i": [5, 17, 5]},                    (time step, neuron index) pairs
      "neuron_rates": {"features.1": [0.0, 0.125, ...]},              optional: per-neuron firing rates
      "learning": {"angle_wb": {"features.1": 12.5}, ...}             optional: the learning rule's measurements
    }                                                                 of the trained model, {measure: {layer: value}}

The trainer's ``summary.json`` (:mod:`spikes.training.loop`) carries these keys beside its own; a first-release
training summary (``test_accuracy``, ``layers``, ``config``, no ``model``) is converted by
:func:`from_training_summary`. A checkpoint path stands for the summary of its run directory.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from spikes.io import atomic_write_text

SCHEMA = "spikes.summary/1"
SUMMARY_FILE = "summary.json"
LAYER_KEYS = ("layer", "firing_rate", "density", "synops", "neurons", "steps", "active_updates")


class SummaryError(ValueError):
    """A summary file is missing or malformed; the message names the file and the offending key."""


@dataclass
class BackendResult:
    """Task metric and per-layer activity of one deployment backend (``sim``, ``lava-fixed``, ...)."""

    metric: float | None
    per_layer: list[dict]
    samples: int | None = None
    reference_rates: dict[str, float] | None = None   # torch's per-layer firing rates on the same samples, when
                                                      # the backend ran fewer than torch (compare with these)


@dataclass
class RunSummary:
    """One run: the torch model's metric and activity, plus optional backends, raster and per-neuron rates."""

    model: str
    task: str
    metric_name: str
    metric: float
    per_layer: list[dict]
    higher_is_better: bool = True
    label: str = ""
    spike_penalty: float | None = None
    backends: dict[str, BackendResult] = field(default_factory=dict)
    raster: dict | None = None
    neuron_rates: dict[str, list[float]] = field(default_factory=dict)
    source: str = "<dict>"
    learning: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label = self.label or self.model

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (schema in the module docstring)."""
        d: dict[str, Any] = {"schema": SCHEMA, "model": self.model, "task": self.task, "label": self.label,
                             "metric_name": self.metric_name, "metric": self.metric,
                             "higher_is_better": self.higher_is_better, "spike_penalty": self.spike_penalty,
                             "per_layer": self.per_layer,
                             "backends": {k: {"metric": b.metric, "per_layer": b.per_layer, "samples": b.samples,
                                              **({"reference_rates": b.reference_rates} if b.reference_rates else {})}
                                          for k, b in self.backends.items()}}
        if self.raster is not None:
            d["raster"] = self.raster
        if self.neuron_rates:
            d["neuron_rates"] = self.neuron_rates
        if self.learning:
            d["learning"] = self.learning
        return d


def _number(value: Any, where: str, *, optional: bool = False, lo: float | None = None,
            hi: float | None = None) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SummaryError(f"{where} must be a finite number, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise SummaryError(f"{where} must be in [{lo}, {hi}], got {value!r}")
    return float(value)


def _rates(raw, where: str) -> dict[str, float] | None:
    """An optional ``{layer: firing rate}`` object."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SummaryError(f"{where} must be an object {{layer: firing rate}}")
    return {str(k): float(_number(v, f"{where}[{k!r}]", lo=0)) for k, v in raw.items()}


def _layers(rows: Any, where: str) -> list[dict]:
    if not isinstance(rows, list):
        raise SummaryError(f"{where} must be a list of layer rows, got {type(rows).__name__}")
    out = []
    for k, row in enumerate(rows):
        w = f"{where}[{k}]"
        if not isinstance(row, Mapping) or not isinstance(row.get("layer"), str):
            raise SummaryError(f"{w} must be an object with a string 'layer', got {row!r}")
        w = f"{where}[{k}] (layer {row['layer']!r})"
        clean = {"layer": row["layer"],
                 "firing_rate": _number(row.get("firing_rate"), f"{w}.firing_rate", optional=True, lo=0, hi=1),
                 "density": _number(row.get("density"), f"{w}.density", optional=True, lo=0, hi=1),
                 "synops": _number(row.get("synops"), f"{w}.synops", optional=True, lo=0)}
        for key in ("neurons", "steps", "active_updates"):
            v = _number(row.get(key), f"{w}.{key}", optional=True, lo=0)
            if v is not None:
                clean[key] = int(v) if key != "active_updates" else v
        out.append(clean)
    return out


def _text(d: Mapping, key: str, where: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v:
        raise SummaryError(f"{where}: key {key!r} must be a non-empty string, got {v!r}")
    return v


def from_training_summary(d: Mapping, source: str = "<dict>") -> dict:
    """Convert the training loop's summary (:mod:`spikes.training`) to this schema's dict form."""
    cfg = d.get("config") or {}
    rows = []
    for r in d.get("layers") or []:
        rows.append({"layer": r.get("layer"), "firing_rate": r.get("firing_rate"), "density": r.get("density"),
                     "synops": r.get("synops_per_sample"), "neurons": r.get("neurons"), "steps": r.get("steps")})
    return {"model": cfg.get("model") or "model", "task": d.get("dataset") or cfg.get("dataset") or "task",
            "metric_name": "accuracy", "metric": d.get("test_accuracy"), "per_layer": rows,
            "label": d.get("label") or f"{cfg.get('model', 'model')} ({cfg.get('neuron', '?')})"}


def parse_summary(d: Any, source: str = "<dict>") -> RunSummary:
    """Validate a summary dict (schema in the module docstring); errors name ``source`` and the key."""
    if not isinstance(d, Mapping):
        raise SummaryError(f"{source}: a summary must be a JSON object, got {type(d).__name__}")
    if "model" not in d and "test_accuracy" in d and "layers" in d:
        d = from_training_summary(d, source)
    where = source
    backends = {}
    raw_b = d.get("backends") or {}
    if not isinstance(raw_b, Mapping):
        raise SummaryError(f"{where}: 'backends' must be an object {{name: {{metric, per_layer}}}}")
    for name, b in raw_b.items():
        if not isinstance(b, Mapping):
            raise SummaryError(f"{where}: backends[{name!r}] must be an object with metric and per_layer")
        backends[str(name)] = BackendResult(
            metric=_number(b.get("metric"), f"{where}: backends[{name!r}].metric", optional=True),
            per_layer=_layers(b.get("per_layer", []), f"{where}: backends[{name!r}].per_layer"),
            samples=(None if b.get("samples") is None
                     else int(_number(b.get("samples"), f"{where}: backends[{name!r}].samples", lo=1))),
            reference_rates=_rates(b.get("reference_rates"), f"{where}: backends[{name!r}].reference_rates"))
    if "per_layer" not in d:
        raise SummaryError(f"{where}: missing required key 'per_layer'")
    raster = d.get("raster")
    if raster is not None:
        try:
            t, i = list(raster["t"]), list(raster["i"])
            steps, neurons = int(raster["steps"]), int(raster["neurons"])
            str(raster["layer"])
        except (KeyError, TypeError, ValueError) as e:
            raise SummaryError(f"{where}: 'raster' needs layer, steps, neurons, t, i ({e})") from None
        if len(t) != len(i) or any(not 0 <= x < steps for x in t) or any(not 0 <= x < neurons for x in i):
            raise SummaryError(f"{where}: 'raster' t/i must have equal length, 0 <= t < steps, 0 <= i < neurons")
    rates = d.get("neuron_rates") or {}
    if not isinstance(rates, Mapping) or not all(isinstance(v, list) for v in rates.values()):
        raise SummaryError(f"{where}: 'neuron_rates' must be an object {{layer: [rate, ...]}}")
    learning = d.get("learning") or {}
    if not isinstance(learning, Mapping) or not all(isinstance(v, Mapping) for v in learning.values()):
        raise SummaryError(f"{where}: 'learning' must be an object {{measure: {{layer: value}}}}")
    learning = {str(k): {str(layer): _number(x, f"{where}: learning[{k!r}][{layer!r}]") for layer, x in v.items()}
                for k, v in learning.items()}
    return RunSummary(
        model=_text(d, "model", where), task=_text(d, "task", where), metric_name=_text(d, "metric_name", where),
        metric=_number(d.get("metric"), f"{where}: key 'metric'"),
        per_layer=_layers(d["per_layer"], f"{where}: per_layer"),
        higher_is_better=bool(d.get("higher_is_better", True)), label=str(d.get("label") or ""),
        spike_penalty=_number(d.get("spike_penalty"), f"{where}: key 'spike_penalty'", optional=True),
        backends=backends, raster=raster, neuron_rates={k: [float(x) for x in v] for k, v in rates.items()},
        source=source, learning=learning)


def load_summary(path: str | os.PathLike) -> RunSummary:
    """Read a run directory's ``summary.json`` (or the file itself); :class:`SummaryError` names the file."""
    p = Path(path)
    if p.suffix == ".pt":                          # a checkpoint: the summary of its run directory
        p = p.parent / SUMMARY_FILE
    elif p.is_dir() or p.suffix != ".json":
        p = p / SUMMARY_FILE
    if not p.exists():
        raise SummaryError(f"{p}: no such file (a run directory needs a {SUMMARY_FILE})")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SummaryError(f"{p}: not a readable JSON summary ({e})") from None
    return parse_summary(data, str(p))


def learning_history(summary: RunSummary, metrics_file: str = "metrics.jsonl") -> dict[str, list[tuple[int, float]]]:
    """The learning rule's measurements over training, ``{measure: [(step, mean over layers), ...]}``, from the
    ``metrics.jsonl`` beside the summary (the trainer logs them as ``<measure>/<layer>``); empty without one."""
    path = Path(summary.source).parent / metrics_file
    if not summary.learning or not path.exists():
        return {}
    out: dict[str, list[tuple[int, float]]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SummaryError(f"{path}: line {n} is not JSON ({e})") from None
        for measure in summary.learning:
            values = [v for k, v in row.items() if k.startswith(measure + "/") and isinstance(v, (int, float))]
            if values and "step" in row:
                out.setdefault(measure, []).append((int(row["step"]), sum(values) / len(values)))
    return out


def write_summary(path: str | os.PathLike, summary: RunSummary) -> Path:
    """Write ``summary`` as JSON atomically (temp file + os.replace); returns the path."""
    p = Path(path)
    if p.is_dir():
        p = p / SUMMARY_FILE
    atomic_write_text(p, json.dumps(summary.to_dict(), indent=1) + "\n")
    return p
