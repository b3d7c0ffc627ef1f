"""The layout of DEVELOPERS.md: models/, datasets/, deploy/ install under spikes.*, never top level."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import spikes

REPO = Path(__file__).resolve().parents[1]


def test_subpackages_map_to_their_folders():
    for name, folder in [("spikes.models", "models"), ("spikes.datasets", "datasets"), ("spikes.deploy", "deploy")]:
        spec = importlib.util.find_spec(name)
        assert spec is not None, name
        assert Path(spec.origin).resolve() == (REPO / folder / "__init__.py").resolve()


def test_no_top_level_models_or_datasets_package_from_this_repo(tmp_path):
    """Outside the repo (a user's working directory), only spikes.* is importable from this project."""
    probe = (
        "import importlib.util, json\n"
        "print(json.dumps({n: (importlib.util.find_spec(n).origin if importlib.util.find_spec(n) else None)"
        " for n in ('models', 'datasets', 'deploy', 'spikes.models')}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    found = json.loads(out.stdout)
    assert found["spikes.models"] is not None
    for name in ("models", "datasets", "deploy"):
        origin = found[name]
        assert origin is None or not Path(origin).resolve().is_relative_to(REPO), f"{name} is importable at top level"


def test_version_is_exposed():
    assert spikes.__version__.count(".") == 2
