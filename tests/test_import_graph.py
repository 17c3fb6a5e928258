"""The package's shape, read from its source with ``ast``: every import of one synthaug module by another, lazy
(function-level) imports included, goes down the floors of docs/ARCHITECTURE.md or stays on its floor; the graph
has no cycle; no module imports a private name (``_x``) of another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "synthaug"

# Floors, lowest first: a module may import from its own floor and the ones below it, never from one above.
FLOORS = [
    ("base", ["synthaug", "synthaug.utils", "synthaug.checks", "synthaug.registry", "synthaug.nearcopy"]),
    ("data", ["synthaug.data"]),
    ("nets", ["synthaug.nets", "synthaug.losses", "synthaug.diffaug", "synthaug.image_pool", "synthaug.io"]),
    ("models", ["synthaug.models"]),
    ("train", ["synthaug.train"]),
    ("augment", ["synthaug.augment"]),
    ("eval", ["synthaug.eval"]),
    ("study", ["synthaug.study"]),
    ("app", ["synthaug.cli", "synthaug.demo", "synthaug.__main__"]),
]

# Imports allowed against the floors, each with its reason: none (TranslatorModel.translated_dataset, the last one,
# became synthaug.augment.translated_dataset(model, data)).
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(modules: dict[str, Path]) -> list[tuple[str, str, list[str], int]]:
    """(importer, imported module, names, line) for every import of a synthaug module, at any depth of the code."""
    edges = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges += [(name, a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "synthaug"]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "synthaug":
                    continue
                names = [a.name for a in node.names]
                subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]  # from pkg import submodule
                edges += [(name, s, [], node.lineno) for s in subs]
                rest = [n for n in names if f"{target}.{n}" not in modules]
                if rest or not subs:
                    edges.append((name, target, rest, node.lineno))
    return edges


def _floor(module: str) -> int:
    best, level = -1, None
    for i, (_, prefixes) in enumerate(FLOORS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, level = len(p), i
    if level is None:
        raise AssertionError(f"{module}: on no floor of tests/test_import_graph.py FLOORS; add it there and to "
                             "docs/ARCHITECTURE.md")
    return level


MODULES = _modules()
EDGES = _imports(MODULES)


def test_every_module_is_on_a_floor():
    for m in MODULES:
        _floor(m)


def test_no_import_from_a_floor_above():
    upward = []
    for src, dst, names, line in EDGES:
        if (src, dst) in ALLOWED_UPWARD:
            continue
        if _floor(dst) > _floor(src):
            upward.append(f"{src}:{line} imports {dst} {names} ({FLOORS[_floor(src)][0]} -> {FLOORS[_floor(dst)][0]})")
    assert not upward, "imports from a floor above:\n" + "\n".join(upward)
    for src, dst in ALLOWED_UPWARD:  # the exceptions still exist (else drop them)
        assert any(e[:2] == (src, dst) for e in EDGES), (src, dst)


def test_nothing_imports_eval_but_the_study_and_the_app():
    into_eval = [f"{s}:{line} imports {d}" for s, d, _, line in EDGES
                 if d.startswith("synthaug.eval") and not s.startswith("synthaug.eval")
                 and FLOORS[_floor(s)][0] not in ("study", "app")]
    assert not into_eval, into_eval


def test_import_graph_has_no_cycle():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for src, dst, _, _ in EDGES:
        if (src, dst) in ALLOWED_UPWARD or dst not in graph:
            continue
        graph[src].add(dst)
        # importing pkg.mod runs pkg/__init__ first: an edge to each package above dst that does not contain src
        parts = dst.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in graph and not (src == parent or src.startswith(parent + ".")):
                graph[src].add(parent)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_private_name_crosses_modules():
    private = [f"{s}:{line} imports {[n for n in names if n.startswith('_') and not n.startswith('__')]} from {d}"
               for s, d, names, line in EDGES if s != d
               and any(n.startswith("_") and not n.startswith("__") for n in names)]
    assert not private, private
