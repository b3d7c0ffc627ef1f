"""Training configuration: one flat table of validated keys, read from TOML or YAML, overridden by flags.

Every key has a type, a default and (where it matters) a range or a set of choices; an unknown key, a
wrong type or an out-of-range value raises :class:`ConfigError` naming the key and the file.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from spikes.io import atomic_write_text


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the file (or ``flag``)."""


def _opt(default, help: str, *, choices: tuple | None = None, min: float | None = None,
         max: float | None = None, min_exclusive: bool = False):
    return field(default=default, metadata={"help": help, "choices": choices, "min": min, "max": max,
                                            "min_exclusive": min_exclusive})


@dataclass
class TrainConfig:
    """All keys of a training run (``config.toml`` of a run directory holds the resolved values)."""

    model: str = _opt("conv_snn", "classifier builder in spikes.models.classifiers", choices=("conv_snn", "mlp_snn"))
    neuron: str = _opt("lif", "spiking neuron kind", choices=("lif", "if", "plif", "cuba", "alif"))
    width: int = _opt(8, "channels of the first conv layer (conv_snn) or hidden units (mlp_snn)", min=1)
    readout: str = _opt("count", "loss on output spike counts or on the output integrator's membrane",
                        choices=("count", "membrane"))
    gain: float = _opt(2.0, "initial weight scale (times Kaiming uniform); conv_snn needs about 8 to fire at the start "
                             "(the demo's setting)", min=0.0, min_exclusive=True)
    dataset: str = _opt("digits-events", "dataset name", choices=("digits-events", "synthetic"))
    n_time_bins: int = _opt(8, "time steps T of each sample", min=1)
    train_limit: int = _opt(0, "use only the first N training samples (0 = all)", min=0)
    test_limit: int = _opt(0, "use only the first N test samples (0 = all)", min=0)
    spike_penalty: float = _opt(0.0, "weight of the mean firing rate added to the loss (sparsity regulariser)", min=0.0)
    epochs: int = _opt(1, "passes over the training set", min=1)
    max_steps: int = _opt(0, "stop after this many optimizer steps in total (0 = no limit)", min=0)
    batch_size: int = _opt(32, "samples per optimizer step", min=1)
    lr: float = _opt(2e-3, "learning rate", min=0.0, min_exclusive=True)
    weight_decay: float = _opt(0.0, "AdamW weight decay", min=0.0)
    optimizer: str = _opt("adam", "optimizer", choices=("adam", "adamw", "sgd"))
    scheduler: str = _opt("cosine", "learning-rate schedule over all steps", choices=("cosine", "constant"))
    seed: int = _opt(0, "seed of weights, data order and every RNG", min=0)
    checkpoint_every: int = _opt(50, "write checkpoint.pt every N steps (and at every epoch end; 0 = epoch ends only)", min=0)
    threads: int = _opt(2, "CPU threads of torch and of the numba neuron kernels", min=1, max=64)
    deterministic: bool = _opt(True, "torch.use_deterministic_algorithms(True)")
    progress: bool = _opt(True, "show a tqdm progress bar")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = {f.name: f for f in fields(TrainConfig)}


def check_value(key: str, value: Any, source: str) -> Any:
    """Validate one key (type, choices, range); return the value (ints accepted for floats)."""
    if key not in FIELDS:
        near = difflib.get_close_matches(key, FIELDS, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"{source}: unknown key {key!r}{hint}; known keys: {', '.join(FIELDS)}")
    f = FIELDS[key]
    typ = type(f.default)
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: key {key!r} must be {typ.__name__}, got {type(value).__name__} {value!r}")
    meta = f.metadata
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(f"{source}: key {key!r} must be one of {list(meta['choices'])}, got {value!r}")
    lo, hi = meta["min"], meta["max"]
    if lo is not None and (value < lo or (meta["min_exclusive"] and value == lo)):
        op = ">" if meta["min_exclusive"] else ">="
        raise ConfigError(f"{source}: key {key!r} is out of range: must be {op} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{source}: key {key!r} is out of range: must be <= {hi}, got {value!r}")
    return value


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a ``.toml`` or ``.yaml``/``.yml`` file into a flat dict (a ``[train]`` table is also accepted)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(path.read_text())
        elif suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(path.read_text()) or {}
        else:
            raise ConfigError(f"{path}: config must be .toml, .yaml or .yml, got {suffix or 'no suffix'!r}")
    except ConfigError:
        raise
    except Exception as exc:  # syntax errors of either parser
        raise ConfigError(f"{path}: cannot parse: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a table of keys, got {type(data).__name__}")
    if set(data) == {"train"} and isinstance(data["train"], dict):
        data = data["train"]
    return data


def resolve_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults <- file (if any) <- ``overrides`` (flags; None values are ignored), every key validated."""
    values: dict[str, Any] = {}
    if path is not None:
        for key, value in read_config_file(path).items():
            values[key] = check_value(key, value, str(path))
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = check_value(key, value, f"flag --{key.replace('_', '-')}")
    return TrainConfig(**values)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(config: TrainConfig, path: str | os.PathLike) -> None:
    """Write the resolved config as flat TOML, atomically (no TOML writer in the deps; the table is flat)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in config.to_dict().items()]
    atomic_write_text(path, "\n".join(lines) + "\n")
