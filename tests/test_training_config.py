"""Config files and flags: precedence, and errors that name the key and the file."""
from __future__ import annotations

import pytest

from spikes.training.config import ConfigError, TrainConfig, read_config_file, resolve_config, write_config


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_file_then_flags_override(tmp_path):
    path = _write(tmp_path, "run.toml", 'model = "mlp_snn"\nwidth = 12\nlr = 1\nepochs = 3\n')
    cfg = resolve_config(path, {"epochs": 5, "seed": None})
    assert cfg.model == "mlp_snn" and cfg.width == 12 and cfg.epochs == 5
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)          # int accepted for a float key
    assert cfg.seed == TrainConfig().seed                         # None flag = not given


def test_yaml_file_and_train_table(tmp_path):
    cfg = resolve_config(_write(tmp_path, "run.yaml", "neuron: plif\nbatch_size: 7\n"))
    assert cfg.neuron == "plif" and cfg.batch_size == 7
    cfg = resolve_config(_write(tmp_path, "nested.toml", '[train]\nneuron = "alif"\n'))
    assert cfg.neuron == "alif"


@pytest.mark.parametrize("text, key, words", [
    ("lrr = 0.1\n", "lrr", ["unknown key", "did you mean 'lr'"]),
    ('epochs = "3"\n', "epochs", ["must be int", "str"]),
    ("deterministic = 1\n", "deterministic", ["must be bool"]),
    ("epochs = true\n", "epochs", ["must be int", "bool"]),
    ("lr = -0.5\n", "lr", ["out of range", "> 0.0"]),
    ("batch_size = 0\n", "batch_size", ["out of range", ">= 1"]),
    ('neuron = "hh"\n', "neuron", ["must be one of"]),
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
    with pytest.raises(ConfigError, match=r"flag --batch-size: key 'batch_size' is out of range"):
        resolve_config(None, {"batch_size": -1})


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"bad\.ini.*\.toml, \.yaml or \.yml"):
        read_config_file(_write(tmp_path, "bad.ini", "x=1"))
    with pytest.raises(ConfigError, match=r"broken\.toml: cannot parse"):
        read_config_file(_write(tmp_path, "broken.toml", "model = \n"))


def test_written_config_reads_back_identical(tmp_path):
    cfg = TrainConfig(model="mlp_snn", lr=3e-4, deterministic=False, dataset="synthetic", width=5)
    write_config(cfg, tmp_path / "config.toml")
    assert resolve_config(tmp_path / "config.toml") == cfg
