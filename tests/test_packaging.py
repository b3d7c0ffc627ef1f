"""The layout of DEVELOPERS.md: models/, datasets/, deploy/ install under spikes.*, never top level."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import spikes

REPO = Path(__file__).resolve().parents[1]


def test_subpackages_map_to_their_folders():
    for name, folder in [("spikes.models", "models"), ("spikes.datasets", "datasets"), ("spikes.deploy", "deploy")]:
        spec = importlib.util.find_spec(name)
        assert spec is not None, name
        assert Path(spec.origin).resolve() == (REPO / folder / "__init__.py").resolve()


def test_no_top_level_models_or_datasets_package_from_this_repo():
    for name in ("models", "datasets", "deploy"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            assert not Path(spec.origin).resolve().is_relative_to(REPO), f"{name} is importable as a top-level package"


def test_version_is_exposed():
    assert spikes.__version__.count(".") == 2
