"""The layer contract of pyproject.toml ([tool.importlinter]) holds; lint-imports, run on the staged package
(.ci/imports.py), fails on planted back-imports; the counting tool counts what a hand count of a small tree gives
and reads the same import graph as grimp."""
from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ci_imports", REPO / ".ci" / "imports.py")
ci = sys.modules.setdefault("ci_imports", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(ci)


def test_contract_holds():
    r = ci.lint(REPO)
    assert r.returncode == 0, r.stdout + r.stderr


def test_lint_reads_the_staged_package(tmp_path):
    """Every module of the installed layout is staged, and lint-imports analyses all of them (the editable
    finder, which maps spikes.models etc. to the top-level folders, would show grimp spikes/ alone)."""
    staged = ci.stage(REPO, tmp_path / "s")
    mods = ci.modules(REPO)
    for name, src in mods.items():
        parts = name.split(".")
        target = tmp_path.joinpath("s", *parts, "__init__.py") if src.name == "__init__.py" else \
            tmp_path.joinpath("s", *parts[:-1], parts[-1] + ".py")
        assert target.read_bytes() == src.read_bytes(), name
    assert {"spikes.models", "spikes.datasets", "spikes.deploy"} <= set(mods)
    out = ci.lint(REPO, staged).stdout
    assert re.search(rf"Analyzed {len(mods)} files", out), out


def _plant(staged: Path, module: str, code: str) -> None:
    """Append ``code`` to a staged module (a copy: staged without links)."""
    f = staged.joinpath(*module.split(".")).with_suffix(".py")
    f.write_text(f.read_text() + "\n" + textwrap.dedent(code))


def _broken_by(staged: Path, contract: str, importer: str, imported: str, line: int | None = None) -> str:
    r = ci.lint(REPO, staged, contract)
    assert r.returncode != 0, r.stdout
    at = rf" \(l\.{line}\)" if line else ""
    assert re.search(rf"{re.escape(importer)} -> {re.escape(imported)}{at}", r.stdout), r.stdout
    return r.stdout


def _lines(staged: Path, module: str) -> int:
    return len(staged.joinpath(*module.split(".")).with_suffix(".py").read_text().splitlines())


def test_deploy_importing_models_breaks_the_contract(tmp_path):
    staged = ci.stage(REPO, tmp_path, link=False)
    n = _lines(staged, "spikes.deploy.sim")
    _plant(staged, "spikes.deploy.sim", "import spikes.models\n")
    _broken_by(staged, "deploy-takes-graphs", "spikes.deploy.sim", "spikes.models", n + 2)


def test_deploy_importing_training_breaks_the_contract(tmp_path):
    staged = ci.stage(REPO, tmp_path, link=False)
    _plant(staged, "spikes.deploy.network", "from spikes.training import loop  # noqa\n")
    for contract in ("layers", "deploy-takes-graphs"):
        _broken_by(staged, contract, "spikes.deploy.network", "spikes.training.loop")


def test_import_inside_a_function_counts(tmp_path):
    """neurons (layer 1) importing layers (layer 2) in a function body breaks the layers contract."""
    staged = ci.stage(REPO, tmp_path, link=False)
    n = _lines(staged, "spikes.neurons.lif")
    _plant(staged, "spikes.neurons.lif", """\
        def _planted():
            from spikes.layers import event_linear
            return event_linear
        """)
    _broken_by(staged, "layers", "spikes.neurons.lif", "spikes.layers.event_linear", n + 3)


def test_cycle_breaks_the_contract(tmp_path):
    """A cycle made by an import in a function body (fixed_point -> quantize -> fixed_point) breaks the no-cycles
    contract in spikes.deploy, which keeps it without the planted import."""
    staged = ci.stage(REPO, tmp_path, link=False)
    message = "No cycles are allowed in spikes.deploy."
    assert message not in ci.lint(REPO, staged, "no-cycles").stdout
    _plant(staged, "spikes.deploy.fixed_point", """\
        def _planted():
            from spikes.deploy import quantize
            return quantize
        """)
    r = ci.lint(REPO, staged, "no-cycles")
    assert r.returncode != 0 and message in r.stdout, r.stdout


def test_new_top_level_module_must_be_placed(tmp_path):
    """exhaustive: a module under spikes/ that no layer names breaks the contract."""
    staged = ci.stage(REPO, tmp_path)
    (staged / "spikes" / "unplaced.py").write_text("X = 1\n")
    r = ci.lint(REPO, staged, "layers")
    assert r.returncode != 0 and "spikes.unplaced" in r.stdout, r.stdout


# -- the counting tool --------------------------------------------------------------------------------------------
TREE = {
    "setup.py": 'ROOTS = {"spikes": "spikes", "spikes.models": "models"}\n',
    "pyproject.toml": """\
        [[tool.importlinter.contracts]]
        type = "layers"
        containers = ["spikes"]
        layers = ["app", "models", "low_a | low_b", "base"]

        [[tool.importlinter.contracts]]
        type = "forbidden"
        source_modules = ["spikes.low_a"]
        forbidden_modules = ["spikes.base.secret"]
        """,
    "spikes/__init__.py": "",
    "spikes/app.py": "import json\nfrom spikes.models import net\n",
    "spikes/base/__init__.py": "from . import util\n",
    "spikes/base/util.py": """\
        def f():
            import os                      # an in-function import of another package
            from spikes.low_a import thing  # up: base -> low_a, in a function
            return os, thing
        """,
    "spikes/base/secret.py": "",
    "spikes/low_a.py": "from spikes.base.util import f\nfrom spikes.base import secret\nthing = 1\n",
    "spikes/low_b.py": "from spikes import low_a\n",              # across independent siblings
    "spikes/notpkg/orphan.py": "import spikes.app\n",             # no __init__.py: not installed, not counted
    "models/__init__.py": "",
    "models/net.py": """\
        class Net:
            def build(self):
                from ..app import json     # up: models -> app (relative, in a method)
                from . import helper
                return json, helper
        """,
    "models/helper.py": "from spikes.models.net import Net\n",
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel, text in TREE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    return tmp_path


def test_counts_of_a_small_tree(tree):
    """Hand count of TREE: upward base.util -> low_a (in function), low_b -> low_a (across |), models.net -> app
    (in function); forbidden low_a -> base.secret; cycles {base.util, low_a} and {app, models.net, models.helper}
    (app -> net -> app, net -> helper -> net);
    in-function imports of spikes modules: 3 statements (util.py once, net.py twice); of other packages: 1."""
    c = ci.counts(tree)
    assert {(i.importer, i.imported, i.in_function) for i in c["upward"]} == {
        ("spikes.base.util", "spikes.low_a", True), ("spikes.low_b", "spikes.low_a", False),
        ("spikes.models.net", "spikes.app", True)}
    assert [(i.importer, i.imported) for i in c["forbidden"]] == [("spikes.low_a", "spikes.base.secret")]
    assert c["cycles"] == [["spikes.app", "spikes.models.helper", "spikes.models.net"],
                           ["spikes.base.util", "spikes.low_a"]]
    assert sorted((f.name, line) for f, line in c["in_function"]) == [("net.py", 3), ("net.py", 4), ("util.py", 3)]
    assert c["in_function_other"] == 1 and c["unparsed"] == []
    assert "spikes.notpkg.orphan" not in ci.modules(tree)


def test_graph_is_grimps(tmp_path, monkeypatch):
    """The tool's module graph of the repo equals grimp's (the graph lint-imports checks)."""
    staged = ci.stage(REPO, tmp_path)
    monkeypatch.syspath_prepend(str(staged))
    for name in [m for m in sys.modules if m == "spikes" or m.startswith("spikes.")]:
        monkeypatch.delitem(sys.modules, name)
    assert Path(importlib.util.find_spec("spikes").origin) == staged / "spikes" / "__init__.py"
    graph = grimp.build_graph("spikes", cache_dir=None)
    found, _, unparsed = ci.imports(REPO)
    assert not unparsed
    assert set(graph.modules) == set(ci.modules(REPO))
    assert {(i.importer, i.imported) for i in found} == {
        (a, b) for a in graph.modules for b in graph.find_modules_directly_imported_by(a)}
