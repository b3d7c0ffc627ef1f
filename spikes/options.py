"""Validated option tables: dataclass fields that carry a help text, choices and a range.

Every table of a run config (the run's own keys, ``[model]``, ``[rule]``, ``[data]``) is a dataclass whose
fields are made with :func:`option`; :func:`check_value` validates one value against its field and
:func:`build_options` a whole table, raising :class:`ConfigError` with the key's full name (``rule.feedback``)
and where it came from (a file, a flag). Imports nothing of spikes (it sits below every layer).
"""
from __future__ import annotations

import difflib
from dataclasses import MISSING, Field, field, fields
from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the file (or ``flag``)."""


def option(default: Any, help: str, *, choices: tuple | None = None, min: float | None = None,
           max: float | None = None, min_exclusive: bool = False) -> Any:
    """A dataclass field with a default, a help text, and (optionally) allowed values or a range."""
    return field(default=default, metadata={"help": help, "choices": choices, "min": min, "max": max,
                                            "min_exclusive": min_exclusive})


def fields_of(cls: type) -> dict[str, Field]:
    return {f.name: f for f in fields(cls)}


def check_value(key: str, value: Any, spec: Field, source: str) -> Any:
    """Validate ``value`` for the field ``spec`` (type of its default, choices, range); ints pass for floats,
    lists for tuples. ``key`` is the full name used in errors."""
    default = spec.default if spec.default is not MISSING else None
    typ = type(default)
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is tuple and isinstance(value, list):
        value = tuple(value)
    if default is not None and (not isinstance(value, typ) or (typ is int and isinstance(value, bool))):
        raise ConfigError(f"{source}: key {key!r} must be {typ.__name__}, got {type(value).__name__} {value!r}")
    meta = spec.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{source}: key {key!r} must be one of {list(meta['choices'])}, got {value!r}")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and (value < lo or (meta.get("min_exclusive") and value == lo)):
        op = ">" if meta.get("min_exclusive") else ">="
        raise ConfigError(f"{source}: key {key!r} is out of range: must be {op} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{source}: key {key!r} is out of range: must be <= {hi}, got {value!r}")
    return value


def unknown_key(key: str, known: list[str], source: str, prefix: str = "") -> ConfigError:
    near = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {prefix + near[0]!r}?)" if near else ""
    return ConfigError(f"{source}: unknown key {prefix + key!r}{hint}; known keys: "
                       f"{', '.join(prefix + k for k in known) or '(none)'}")


def build_options(cls: type, values: dict[str, Any], prefix: str = "", source: str = "config") -> Any:
    """``cls(**values)`` with every key checked (``prefix`` e.g. ``"rule."`` names the table in errors); errors
    raised by ``cls.__post_init__`` come back as :class:`ConfigError`."""
    spec = fields_of(cls)
    checked = {}
    for key, value in values.items():
        if key not in spec:
            raise unknown_key(key, list(spec), source, prefix)
        checked[key] = check_value(prefix + key, value, spec[key], source)
    try:
        return cls(**checked)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: [{prefix.rstrip('.') or 'config'}] {exc}") from exc
