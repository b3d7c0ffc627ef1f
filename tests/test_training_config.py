"""Config files and flags: four tables, precedence, first-release flat files, and errors naming the key and file."""
from __future__ import annotations

import pytest

from spikes.training.config import (ConfigError, RunConfig, flat_config, parse_overrides, read_config_file,
                                    resolve_config, write_config)


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_flat_first_release_file_then_flags_override(tmp_path):
    path = _write(tmp_path, "run.toml", 'model = "mlp_snn"\nwidth = 12\nlr = 1\nepochs = 3\n')
    cfg = resolve_config(path, {"epochs": 5, "seed": None})
    assert cfg.model == "mlp_snn" and cfg.model_options.width == 12 and cfg.train.epochs == 5
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)   # int accepted for a float key
    assert cfg.train.seed == RunConfig().train.seed                   # None flag = not given
    assert cfg.rule == "bptt"                                         # the kind's default rule


def test_tables_yaml_and_set_overrides(tmp_path):
    cfg = resolve_config(_write(tmp_path, "run.yaml", "model: {kind: rsnn, n_rec: 40}\ntrain: {batch_size: 7}\n"))
    assert cfg.model == "rsnn" and cfg.model_options.n_rec == 40 and cfg.train.batch_size == 7
    assert cfg.rule == "eprop"                                        # rsnn's default rule
    cfg = resolve_config(_write(tmp_path, "run.toml", '[model]\nkind = "rsnn"\n[rule]\nname = "bptt"\n'),
                         parse_overrides(["rule.grad_clip=2", "data.n_time_bins=5"]))
    assert cfg.rule == "bptt" and cfg.rule_options.grad_clip == 2.0 and cfg.data.n_time_bins == 5


@pytest.mark.parametrize("text, key, words", [
    ("lrr = 0.1\n", "lrr", ["unknown key", "did you mean 'lr'"]),
    ('epochs = "3"\n', "train.epochs", ["must be int", "str"]),
    ("deterministic = 1\n", "train.deterministic", ["must be bool"]),
    ("epochs = true\n", "train.epochs", ["must be int", "bool"]),
    ("lr = -0.5\n", "train.lr", ["out of range", "> 0.0"]),
    ("batch_size = 0\n", "train.batch_size", ["out of range", ">= 1"]),
    ('neuron = "hh"\n', "model.neuron", ["must be one of"]),
    ('[model]\nkind = "rsnn"\nwidth = 3\n', "model.width", ["unknown key"]),
    ('[rule]\nname = "eprop"\nfeedback = "mirror"\n', "rule.feedback", ["must be one of"]),
    ('[rule]\nname = "hebb"\n', "rule.name", ["must be one of", "bptt"]),
    ('[model]\nkind = "nosuch"\n', "model.kind", ["unknown model"]),
])
def test_bad_key_errors_name_key_and_file(tmp_path, text, key, words):
    path = _write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        resolve_config(path)
    msg = str(info.value)
    assert str(path) in msg and repr(key) in msg
    for w in words:
        assert w in msg


def test_bad_flag_names_flag():
    with pytest.raises(ConfigError, match=r"flags: key 'train.batch_size' is out of range"):
        resolve_config(None, {"batch_size": -1})
    with pytest.raises(ConfigError, match=r"--set 'n_rec=3': expected TABLE.KEY=VALUE"):
        parse_overrides(["n_rec=3"])


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"bad\.ini.*\.toml, \.yaml or \.yml"):
        read_config_file(_write(tmp_path, "bad.ini", "x=1"))
    with pytest.raises(ConfigError, match=r"broken\.toml: cannot parse"):
        read_config_file(_write(tmp_path, "broken.toml", "model = \n"))


@pytest.mark.parametrize("keys", [dict(model="mlp_snn", lr=3e-4, deterministic=False, dataset="synthetic", width=5),
                                  dict(model="gt_network", dataset="wine", keep_best=True, patience=2)])
def test_written_config_reads_back_identical(tmp_path, keys):
    cfg = flat_config(**keys)
    write_config(cfg, tmp_path / "config.toml")
    assert resolve_config(tmp_path / "config.toml") == cfg
