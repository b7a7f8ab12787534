"""The package's shape: a sub-package per stage, no import cycles, no private name reached across modules."""

import ast
from pathlib import Path

from tests.support.runner import ROOT

PACKAGE = ROOT / "tileprobe"
# The only plain modules at the top: shared by every stage.
# quiet: the precise filters for dependencies' warnings, installed when tileprobe is imported
SHARED_MODULES = {"__init__.py", "errors.py", "atomic.py", "cli.py", "jsonable.py", "threads.py", "quiet.py"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, known: dict[str, Path]):
    """(imported module, name or None, line) for every tileprobe import, function-level ones included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tileprobe"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in known:  # `from tileprobe.x import module`
                    yield sub, None, node.lineno
                else:
                    yield node.module, alias.name, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tileprobe"):
                    yield alias.name, None, node.lineno


def graph() -> dict[str, set[str]]:
    known = modules()
    edges = {}
    for name, path in known.items():
        # A package's __init__ importing its own modules (to register or re-export them) is no cycle.
        edges[name] = {target for target, _, _ in imports(path, known)
                       if target != name and not name.startswith(target + ".") and target in known
                       and not (path.name == "__init__.py" and target.startswith(name + "."))}
    return edges


def test_top_level_holds_only_stage_packages_and_a_few_shared_modules():
    plain = {p.name for p in PACKAGE.iterdir() if p.suffix == ".py"}
    assert plain <= SHARED_MODULES, f"move {sorted(plain - SHARED_MODULES)} into the package of its stage"
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert {"slides", "tiling", "embed", "augment", "learn", "report", "workflow", "config", "demo"} <= packages


def test_packages_are_at_most_two_levels_deep():
    deep = [p for p in PACKAGE.rglob("*.py") if len(p.relative_to(PACKAGE).parts) > 3]
    assert not deep, deep


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])


def test_no_private_name_is_imported_from_another_module():
    known = modules()
    crossing = [f"{module_name(path)}:{line} imports {target}.{name}"
                for path in known.values() for target, name, line in imports(path, known)
                if name and name.startswith("_") and name != "__version__"]
    assert not crossing, "make these public in one place:\n" + "\n".join(crossing)


def test_the_checker_finds_a_cycle(tmp_path, monkeypatch):
    """The cycle test can fail: two modules importing each other are caught."""
    pkg = tmp_path / "tileprobe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from tileprobe.b import x\n")
    (pkg / "b.py").write_text("def f():\n    from tileprobe.a import y\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "PACKAGE", pkg)
    try:
        test_no_import_cycle()
    except AssertionError as err:
        assert "tileprobe.a -> tileprobe.b -> tileprobe.a" in str(err)
    else:
        raise AssertionError("the cycle was not found")
