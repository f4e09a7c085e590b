"""One leaf module of errors under one base class, and no import cycles in the package."""

import ast
import inspect
from pathlib import Path

from saesteer import errors

PACKAGE = Path(errors.__file__).parent


def _modules() -> dict[str, ast.Module]:
    return {
        ".".join(("saesteer", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
            ".__init__"
        ): ast.parse(path.read_text())
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_every_error_is_a_saesteer_error_defined_in_errors_py():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)]
    assert all(issubclass(c, errors.SaesteerError) for c in classes)
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                assert name == "saesteer.errors", f"{name} defines {node.name}"


def test_errors_py_is_a_leaf():
    tree = ast.parse(Path(errors.__file__).read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def _imports(tree: ast.Module, modules: set[str]) -> set[str]:
    """The package's modules that `tree` imports anywhere (function-local imports too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("saesteer"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
    return found


def test_the_package_has_no_import_cycle():
    trees = _modules()
    graph = {name: _imports(tree, set(trees)) - {name} for name, tree in trees.items()}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph.get(name, ())):
            assert state.get(other) != "open", " -> ".join([*path, name, other])
            if other not in state:
                visit(other, [*path, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
