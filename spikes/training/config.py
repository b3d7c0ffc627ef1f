"""One run configuration for every model and rule: four validated tables, read from TOML or YAML, overridden by flags.

```toml
[model]            # kind = a built-in kind (spikes.models.registry) or "package.module:factory"; the other keys
kind = "conv_snn"  # are the kind's options (conv_snn: width, neuron, readout, gain; rsnn: n_rec, n_adaptive, ...)
neuron = "plif"
[rule]             # name = bptt | eprop | gt | ... ("" = the model's default rule); the other keys its options
name = "bptt"
[data]             # dataset = digits-events | synthetic | nmnist | dvsgesture | pokerdvs | ncaltech101 |
dataset = "digits-events"   # events:DIR | wine | breast_cancer | stereo-embedded | stereo:PATH; root = where it lies;
n_time_bins = 8    # the other keys: spikes.training.data.DataOptions (time bins, denoise, downsample, ...)
[train]            # TrainOptions: epochs, batch_size, lr, optimizer, schedule, seed, checkpoints, threads, ...
epochs = 10
```

Every key has a type, a default and (where it matters) a range or a set of choices; an unknown key, a wrong type
or an out-of-range value raises :class:`ConfigError` naming the key (``model.width``, ``rule.feedback``) and the
file or flag. Flat files of the first release (``width = 8`` beside ``epochs = 10``, no tables) are read too:
each old key goes to its table (``LEGACY``).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from spikes.io import atomic_write_text
from spikes.learning import bptt, eprop_rule, gt_local  # noqa: F401  (registers the built-in rules)
from spikes.learning import btsp, reward_fluctuation  # noqa: F401
from spikes.learning import (direct_feedback, feedback_alignment, information_alignment,  # noqa: F401
                             kolen_pollack, sign_symmetry, symmetric_alignment, weight_mirror)
from spikes.learning.rule import RULES, LearningRule
from spikes.models.registry import KINDS, ModelKind, kind_of, options_fields
from spikes.options import ConfigError, build_options, fields_of, option, unknown_key
from spikes.training.data import DATASETS, DataOptions

__all__ = ["ConfigError", "RunConfig", "TrainOptions", "read_config_file", "resolve_config", "write_config",
           "LEGACY", "TABLES", "flat_config", "config_from_dict", "parse_overrides"]

TABLES = ("model", "rule", "data", "train")


@dataclass(frozen=True)
class TrainOptions:
    """The ``[train]`` table: the loop's own settings."""

    epochs: int = option(1, "passes over the training set", min=1)
    max_steps: int = option(0, "stop after this many steps in total (0 = no limit)", min=0)
    batch_size: int = option(32, "samples per step", min=1)
    lr: float = option(2e-3, "learning rate", min=0.0, min_exclusive=True)
    weight_decay: float = option(0.0, "weight decay of the optimizer", min=0.0)
    optimizer: str = option("adam", "optimizer (rules that need none ignore it)", choices=("adam", "adamw", "sgd"))
    scheduler: str = option("cosine", "learning-rate schedule: cosine over all steps, constant, or halved at the "
                                      "milestones", choices=("cosine", "constant", "step"))
    milestones: tuple = option((8 / 70, 42 / 70, 60 / 70), "step schedule: fractions of the epochs after which the "
                                                           "learning rate halves (StereoSpike's paper: 8, 42, 60 of 70)")
    spike_penalty: float = option(0.0, "weight of the objective's spike penalty (classifiers: mean firing rate; "
                                       "StereoSpike: squared skip and bottleneck spikes)", min=0.0)
    keep_best: bool = option(False, "keep the weights of the epoch with the best validation metric (needs a "
                                    "validation split: the tabular sets have one)")
    patience: int = option(0, "with keep_best: stop after this many epochs without improvement (0 = never)", min=0)
    init_from: str = option("", "start from the weights of this checkpoint (e.g. fine-tuning with a spike penalty); "
                                "its model must be the same kind with the same arguments")
    seed: int = option(0, "seed of weights, data order and every RNG", min=0)
    checkpoint_every: int = option(50, "write checkpoint.pt every N steps (and at every epoch end; 0 = epoch ends only)",
                                   min=0)
    threads: int = option(2, "CPU threads of torch and of the numba neuron kernels", min=1, max=64)
    deterministic: bool = option(True, "torch.use_deterministic_algorithms(True)")
    progress: bool = option(True, "show a tqdm progress bar")
    log_synops: bool = option(False, "log each step's synaptic operations per sample in metrics.jsonl (probes every "
                                     "layer: a little slower)")


# first-release flat keys -> (table, key)
LEGACY = {"model": ("model", "kind"), "neuron": ("model", "neuron"), "width": ("model", "width"),
          "readout": ("model", "readout"), "gain": ("model", "gain"), "dataset": ("data", "dataset"),
          "n_time_bins": ("data", "n_time_bins"), "train_limit": ("data", "train_limit"),
          "test_limit": ("data", "test_limit"), **{f.name: ("train", f.name) for f in fields(TrainOptions)}}


@dataclass(frozen=True)
class RunConfig:
    """A resolved run configuration: the model kind and its options, the rule and its options, the data set and its
    options, the loop's options. ``to_dict()`` gives the four tables (what ``config.toml`` and checkpoints hold)."""

    model: str = "conv_snn"
    model_options: Any = None             # the kind's Options (None: its defaults)
    rule: str = "bptt"
    rule_options: Any = None              # the rule's Options (None: its defaults)
    dataset: str = "digits-events"
    data_root: str = ""
    data: DataOptions = field(default_factory=DataOptions)
    train: TrainOptions = field(default_factory=TrainOptions)

    def __post_init__(self) -> None:
        if self.model_options is None:
            object.__setattr__(self, "model_options", {} if self.kind.options is dict else self.kind.options())
        if self.rule_options is None:
            object.__setattr__(self, "rule_options", RULES[self.rule].Options())

    @property
    def kind(self) -> ModelKind:
        return kind_of(self.model)

    def make_rule(self) -> LearningRule:
        return RULES[self.rule](self.rule_options)

    def model_kwargs(self) -> dict[str, Any]:
        o = self.model_options
        return dict(o) if isinstance(o, dict) else asdict(o)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"model": {"kind": self.model, **self.model_kwargs()},
                "rule": {"name": self.rule, **asdict(self.rule_options)},
                "data": {"dataset": self.dataset, "root": self.data_root, **asdict(self.data)},
                "train": asdict(self.train)}


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a ``.toml`` or ``.yaml``/``.yml`` file into a dict (tables, or a flat first-release file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(path.read_text())
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(path.read_text()) or {}
        else:
            raise ConfigError(f"{path}: config must be .toml, .yaml or .yml, got {suffix or 'no suffix'!r}")
    except ConfigError:
        raise
    except Exception as exc:  # syntax errors of either parser
        raise ConfigError(f"{path}: cannot parse: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a table of keys, got {type(data).__name__}")
    return data


def _tables(data: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """Split ``data`` into the four tables; flat first-release keys go to their table."""
    tables: dict[str, dict[str, Any]] = {t: {} for t in TABLES}
    for key, value in data.items():
        if key in TABLES and isinstance(value, dict):
            tables[key].update(value)
        elif key in LEGACY:
            table, name = LEGACY[key]
            tables[table][name] = value
        else:
            raise unknown_key(key, list(TABLES) + sorted(LEGACY), source)
    return tables


def _merge(into: dict[str, dict[str, Any]], more: dict[str, dict[str, Any]]) -> None:
    for table, values in more.items():
        into[table].update({k: v for k, v in values.items() if v is not None})


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["model.n_rec=128", "rule.feedback=random"]`` (``--set``) -> tables; values parsed as TOML scalars."""
    tables: dict[str, dict[str, Any]] = {t: {} for t in TABLES}
    for item in items:
        key, eq, raw = item.partition("=")
        table, dot, name = key.strip().partition(".")
        if not eq or not dot or table not in TABLES or not name:
            raise ConfigError(f"flag --set {item!r}: expected TABLE.KEY=VALUE with TABLE one of {list(TABLES)}")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except Exception:
            value = raw.strip()                       # a bare word is a string
        tables[table][name] = value
    return tables


def resolve_config(path: str | os.PathLike | None = None, overrides: dict[str, dict[str, Any]] | None = None,
                   flat_overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults <- file (if any) <- ``flat_overrides`` (first-release flag names: ``epochs``, ``width``, ...)
    <- ``overrides`` (tables, e.g. from ``--set``); None values are ignored; every key validated."""
    source = str(path) if path is not None else "flags"
    if overrides and not all(k in TABLES and isinstance(v, dict) for k, v in overrides.items()):
        flat_overrides, overrides = {**overrides, **(flat_overrides or {})}, None     # first-release flat keys
    tables = _tables(read_config_file(path), source) if path is not None else {t: {} for t in TABLES}
    if flat_overrides:
        _merge(tables, _tables({k: v for k, v in flat_overrides.items() if v is not None}, "flags"))
    if overrides:
        _merge(tables, overrides)
    m, r, d, t = (dict(tables[k]) for k in TABLES)

    kind_name = m.pop("kind", "conv_snn")
    if not isinstance(kind_name, str):
        raise ConfigError(f"{source}: key 'model.kind' must be str, got {kind_name!r}")
    try:
        kind = kind_of(kind_name)
    except ValueError as exc:
        raise ConfigError(f"{source}: key 'model.kind': {exc}") from None
    model_options = dict(m) if kind.options is dict else build_options(kind.options, m, "model.", source)

    rule_name = r.pop("name", "") or kind.default_rule
    if rule_name not in RULES:
        raise ConfigError(f"{source}: key 'rule.name' must be one of {sorted(RULES)}, got {rule_name!r}")
    rule_options = build_options(RULES[rule_name].Options, r, "rule.", source)

    dataset = d.pop("dataset", "digits-events")
    root = d.pop("root", "")
    if not isinstance(dataset, str) or not (dataset in DATASETS or dataset.startswith(("events:", "stereo:"))):
        raise ConfigError(f"{source}: key 'data.dataset' must be one of {list(DATASETS)} or events:DIR / stereo:PATH, "
                          f"got {dataset!r}")
    if not isinstance(root, str):
        raise ConfigError(f"{source}: key 'data.root' must be str, got {root!r}")
    data = build_options(DataOptions, d, "data.", source)
    train = build_options(TrainOptions, t, "train.", source)
    return RunConfig(kind_name, model_options, rule_name, rule_options, dataset, root, data, train)


def flat_config(**keys: Any) -> RunConfig:
    """A :class:`RunConfig` from first-release flat keys (``flat_config(model="mlp_snn", width=16, epochs=2)``)."""
    return resolve_config(None, None, keys)


def config_from_dict(tables: dict[str, Any], source: str = "checkpoint") -> RunConfig:
    """The :class:`RunConfig` of ``RunConfig.to_dict()`` output (or of a flat first-release config dict)."""
    return resolve_config(None, _tables(tables, source))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(config: RunConfig, path: str | os.PathLike) -> None:
    """Write the resolved config as TOML tables, atomically (no TOML writer in the deps; the tables are flat)."""
    lines = []
    for table, values in config.to_dict().items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
        lines.append("")
    atomic_write_text(path, "\n".join(lines))


def describe_options() -> str:
    """Every table's keys with their defaults and help (``spikes train --list-options``)."""
    out = []
    for name, kind in sorted(KINDS.items()):
        out.append(f"[model] kind = {name!r}: {kind.description} (default rule {kind.default_rule!r})")
        out += [f"    {k} = {f.default!r}: {f.metadata['help']}" for k, f in options_fields(kind).items()]
    for name, rule in sorted(RULES.items()):
        out.append(f"[rule] name = {name!r}: {(rule.__doc__ or '').strip().splitlines()[0]}")
        out += [f"    {k} = {f.default!r}: {f.metadata['help']}" for k, f in fields_of(rule.Options).items()]
    out.append(f"[data] dataset = one of {list(DATASETS)}, events:DIR or stereo:PATH; root = where it lies")
    out += [f"    {k} = {f.default!r}: {f.metadata.get('help', '')}" for k, f in fields_of(DataOptions).items()]
    out.append("[train]")
    out += [f"    {k} = {f.default!r}: {f.metadata['help']}" for k, f in fields_of(TrainOptions).items()]
    return "\n".join(out)
