"""The import graph of the installed `spikes` package, for the layer contract in pyproject.toml.

`models/`, `datasets/` and `deploy/` install as `spikes.models`, `spikes.datasets` and `spikes.deploy` (setup.py's
ROOTS, through package_dir in an editable install), so grimp, which walks the folder of the `spikes` package, never
sees them in the repo. `stage` lays the .py files out as the installed package (hard links, or copies across file
systems) and `lint` runs `lint-imports` on that copy. The staged copy wins over the editable finder: lint-imports puts
its working directory first on sys.path and the editable finder sits after PathFinder on sys.meta_path, so `lint`
runs in the staging folder (also on PYTHONPATH) with the repo's config given by path.

`counts` reads the same graph with `ast` (grimp's conventions: `from a import b` is an import of a.b when that is a
module, else of a; imports anywhere in a function body count) and prints
  * upward imports: importer in a lower layer of the contract than the module it imports, or an import between
    independent siblings (`a | b`); and imports that a `forbidden` contract forbids;
  * import cycles: strongly connected components (more than one module) of the module graph (the no-cycles
    contract also counts a cycle between subpackages taken as wholes);
  * in-function imports of spikes modules (imports of other packages inside functions are counted apart: the
    allowed deferrals of heavy optional dependencies).

usage: python .ci/imports.py {stage DEST | lint | counts} [--root REPO]
"""
from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def package_roots(root: Path) -> dict[str, Path]:
    """setup.py's ROOTS (package name -> folder), read without running setup()."""
    tree = ast.parse((root / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ROOTS" for t in node.targets):
            return {name: root / folder for name, folder in ast.literal_eval(node.value).items()}
    raise ValueError(f"{root / 'setup.py'}: no ROOTS = {{package: folder}} assignment")


def modules(root: Path) -> dict[str, Path]:
    """Every module of the installed package: dotted name -> source file (packages by their __init__.py)."""
    out: dict[str, Path] = {}
    for pkg, folder in package_roots(root).items():
        for f in sorted(folder.rglob("*.py")):
            rel = f.relative_to(folder)
            if not all((folder / Path(*rel.parts[:i]) / "__init__.py").is_file() for i in range(len(rel.parts))):
                continue  # not inside a package (setup.py installs only folders with __init__.py)
            parts = [*pkg.split("."), *rel.with_suffix("").parts]
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def stage(root: Path, dest: Path, link: bool = True) -> Path:
    """Lay the package's .py files out under dest as installed (dest/spikes/models/..., ...); returns dest.

    ``link``: hard links where the file system allows (never write to a linked file: it is the repo's), else
    copies."""
    for name, src in modules(root).items():
        target = dest.joinpath(*name.split("."), "__init__.py") if src.name == "__init__.py" else \
            dest.joinpath(*name.split(".")[:-1], src.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            try:
                os.link(src, target)
                continue
            except OSError:  # another file system (or the target exists): copy
                pass
        shutil.copy2(src, target)
    return dest


def lint(root: Path, staged: Path | None = None, contract: str | None = None) -> subprocess.CompletedProcess:
    """Run lint-imports with root's pyproject.toml on a staged copy (staged, or a fresh one of root); ``contract``:
    only the contract of that id."""
    root = Path(root).resolve()   # lint-imports runs in the staging folder
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.is_file():
        raise FileNotFoundError(f"{exe}: import-linter is not installed (pip install -e '.[dev]')")
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(staged).resolve() if staged is not None else stage(root, Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(where)}
        only = ["--contract", contract] if contract else []
        command = [str(exe), "--config", str(root / "pyproject.toml"), "--no-cache", "--no-logo", *only]
        return subprocess.run(command, cwd=where, env=env, capture_output=True, text=True)


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    file: Path
    line: int
    in_function: bool


def _known(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports(root: Path) -> tuple[list[Import], int, list[str]]:
    """Imports of spikes modules, one per (statement, imported module); the count of in-function imports of
    other packages; and the files Python cannot parse (``file:line: message``; their imports are not counted)."""
    mods = modules(root)
    found: list[Import] = []
    other_inner = 0
    errors: list[str] = []
    for me, f in mods.items():
        try:
            tree = ast.parse(f.read_text(), filename=str(f))
        except SyntaxError as exc:
            errors.append(f"{f}:{exc.lineno}: {exc.msg}")
            continue
        inner = {id(n) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
        package = me if f.name == "__init__.py" else me.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            targets = {t for t in (_known(n, mods) for n in names) if t and t != me}
            if not targets and id(node) in inner and not any(n.split(".")[0] == "spikes" for n in names):
                other_inner += 1
            found += [Import(me, t, f, node.lineno, id(node) in inner) for t in sorted(targets)]
    return found, other_inner, errors


def contracts(root: Path) -> list[dict]:
    """The import-linter contracts of root's pyproject.toml."""
    return tomllib.loads((root / "pyproject.toml").read_text()).get("tool", {}).get("importlinter", {}).get(
        "contracts", [])


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layers(root: Path) -> list[tuple[list[str], bool]]:
    """The layers contract of pyproject.toml, top first: (modules, independent) per layer."""
    for contract in contracts(root):
        if contract.get("type") == "layers":
            containers = contract.get("containers") or [""]
            return [([f"{c}.{m.strip()}".lstrip(".") for c in containers for m in layer.replace(":", "|").split("|")],
                     ":" not in layer) for layer in contract["layers"]]
    raise ValueError(f"{root / 'pyproject.toml'}: no [[tool.importlinter.contracts]] of type 'layers'")


def upward(found: list[Import], contract: list[tuple[list[str], bool]]) -> list[Import]:
    """Imports the layers contract forbids (direct ones; lint-imports also reports chains through them)."""
    where: dict[str, tuple[int, str, bool]] = {}  # layer module -> (height, itself, independent)
    for i, (mods, independent) in enumerate(contract):
        for m in mods:
            where[m] = (len(contract) - i, m, independent)

    def place(name: str):
        parts = name.split(".")
        return next((where[".".join(parts[:k])] for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in where),
                    None)

    bad = []
    for imp in found:
        a, b = place(imp.importer), place(imp.imported)
        if a and b and (a[0] < b[0] or (a[0] == b[0] and a[1] != b[1] and a[2])):  # up, or across a `|`
            bad.append(imp)
    return bad


def forbidden(found: list[Import], root: Path) -> list[Import]:
    """Direct imports that the forbidden contracts of root's pyproject.toml forbid."""
    rules = [(c["source_modules"], c["forbidden_modules"]) for c in contracts(root) if c.get("type") == "forbidden"]
    return [i for i in found if any(any(_within(i.importer, s) for s in src) and
                                    any(_within(i.imported, f) for f in bad) for src, bad in rules)]


def cycles(found: list[Import]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    edges: dict[str, set[str]] = {}
    for imp in found:
        edges.setdefault(imp.importer, set()).add(imp.imported)
        edges.setdefault(imp.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(edges[w]))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return sorted(out)


def counts(root: Path, contract_root: Path | None = None) -> dict:
    """Upward imports, cycles and in-function imports of root's package, against contract_root's layers."""
    found, other_inner, errors = imports(root)
    statements = {(i.file, i.line) for i in found if i.in_function}
    contract_root = contract_root or root
    return {"upward": upward(found, layers(contract_root)), "forbidden": forbidden(found, contract_root),
            "cycles": cycles(found), "unparsed": errors,
            "in_function": sorted(statements), "in_function_other": other_inner}


def report(root: Path, contract_root: Path | None = None) -> str:
    c = counts(root, contract_root)
    rel = lambda f: os.path.relpath(f, root)
    lines = [f"cannot parse (not counted): {e}" for e in c["unparsed"]]
    lines.append(f"upward imports: {len(c['upward'])}")
    lines += [f"  {rel(i.file)}:{i.line}  {i.importer} -> {i.imported}{'  (in function)' * i.in_function}"
              for i in c["upward"]]
    lines.append(f"forbidden imports (forbidden contracts): {len(c['forbidden'])}")
    lines += [f"  {rel(i.file)}:{i.line}  {i.importer} -> {i.imported}{'  (in function)' * i.in_function}"
              for i in c["forbidden"]]
    lines.append(f"import cycles: {len(c['cycles'])}")
    lines += [f"  {' <-> '.join(comp)}" for comp in c["cycles"]]
    per_file: dict[Path, int] = {}
    for f, _ in c["in_function"]:
        per_file[f] = per_file.get(f, 0) + 1
    lines.append(f"in-function imports of spikes modules: {len(c['in_function'])} in {len(per_file)} files "
                 f"(in-function imports of other packages: {c['in_function_other']})")
    lines += [f"  {n:3d} {rel(f)}" for f, n in sorted(per_file.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["stage", "lint", "counts"])
    p.add_argument("dest", nargs="?", type=Path, help="stage: the folder to lay the package out in")
    p.add_argument("--root", type=Path, default=REPO, help="the repo (default: this one)")
    p.add_argument("--contract", type=Path, help="counts: the repo whose pyproject.toml gives the layers "
                   "(default: --root)")
    a = p.parse_args(argv)
    if a.what == "stage":
        if a.dest is None:
            p.error("stage needs DEST")
        print(stage(a.root, a.dest))
        return 0
    if a.what == "lint":
        r = lint(a.root)
        print(r.stdout, r.stderr, sep="", end="")
        return r.returncode
    print(report(a.root, a.contract))
    return 0


if __name__ == "__main__":
    sys.exit(main())
