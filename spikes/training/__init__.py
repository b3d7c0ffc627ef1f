"""Training: one loop for every model kind and learning rule (:mod:`.loop`), its callbacks (:mod:`.callbacks`), the
run config of four validated tables (:mod:`.config`), data sets by name (:mod:`.data`) and the one checkpoint
format (:mod:`.checkpoint`). Run-directory layout: see :mod:`spikes.training.loop`."""
from spikes.training.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from spikes.training.config import (ConfigError, RunConfig, TrainOptions, flat_config, read_config_file, resolve_config,
                                    write_config)
from spikes.training.data import batch_order, open_dataset
from spikes.training.loop import CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, evaluate, seed_everything, train

__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "METRICS_FILE", "SUMMARY_FILE", "CheckpointError", "ConfigError",
           "RunConfig", "TrainOptions", "batch_order", "evaluate", "flat_config", "open_dataset", "load_checkpoint", "load_model", "read_config_file",
           "resolve_config", "save_checkpoint", "seed_everything", "train", "write_config"]
