"""Package discovery: `models/`, `datasets/` and `deploy/` install as `spikes.models`, `spikes.datasets`
and `spikes.deploy` (never as top-level packages, which collide with other projects)."""
from pathlib import Path

from setuptools import setup

ROOTS = {"spikes": "spikes", "spikes.models": "models", "spikes.datasets": "datasets", "spikes.deploy": "deploy"}


def discover() -> tuple[list[str], dict[str, str]]:
    here = Path(__file__).parent
    packages: list[str] = []
    for name, folder in ROOTS.items():
        for init in sorted((here / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(here / folder)
            packages.append(".".join([name, *rel.parts]))
    return packages, dict(ROOTS)


packages, package_dir = discover()
setup(packages=packages, package_dir=package_dir, include_package_data=True)
