"""No import circles among seqlab's modules.

Every module under ``src/seqlab`` is parsed (never imported) and each import of a seqlab module
is an edge, wherever it stands: at module level or inside a function, method or ``try``. Only
imports under ``if TYPE_CHECKING:`` are left out (they never run). Relative imports are resolved;
``from pkg import name`` is an edge to the submodule ``pkg.name`` when there is one, and to
``pkg`` itself when ``name`` is not a submodule. An import circle is a strongly connected
component (Tarjan 1972) of two or more modules; the test lists every one of them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "seqlab"

Graph = Mapping[str, Iterable[str]]


def module_files(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``package`` under ``src``."""
    out: dict[str, Path] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (any ``X.TYPE_CHECKING``)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (their ``else`` stays)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, modules: Mapping[str, Path], package: str) -> set[str]:
    """The known modules that the module ``name`` (file ``path``) imports at run time."""
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]  # the package relative imports start at
    out: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names}
            out.update(subs & modules.keys())
            if not subs <= modules.keys():
                out.add(target)
    return {m for m in out if m in modules and m != name and m.split(".")[0] == package}


def import_graph(src: Path = SRC, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules it imports, for every module of ``package``."""
    modules = module_files(src, package)
    return {m: imported_modules(m, p, modules, package) for m, p in modules.items()}


def import_cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of ``graph`` with two or more nodes, or a self-loop.

    Each component is sorted; components are sorted by their first node. Iterative Tarjan, so
    deep graphs do not hit the recursion limit. Edges to nodes outside ``graph`` are ignored.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, edges = work[-1]
            w = next((w for w in edges if w in graph), None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1 or v in graph[v]:
                    found.append(sorted(component))
    return sorted(found)


def describe(cycles: list[list[str]], graph: Graph) -> str:
    """A readable report: each circle's modules, with the edges inside it."""
    lines = [f"{len(cycles)} import circle(s) among seqlab's modules:"]
    for i, component in enumerate(cycles, start=1):
        lines.append(f"  circle {i} ({len(component)} modules):")
        members = set(component)
        for m in component:
            inside = sorted(set(graph[m]) & members)
            lines.append(f"    {m} -> {', '.join(inside)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the check


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert "seqlab.train.trainer" in graph and len(graph) > 50  # the walk found the package
    cycles = import_cycles(graph)
    assert not cycles, describe(cycles, graph)


# --------------------------------------------------------------------------- the checker itself


def test_cycle_finder_on_a_hand_made_graph() -> None:
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"},
        "e": {"d", "f"},  # d <-> e, reached from the first circle
        "f": set(),  # a leaf
        "g": {"g", "a"},  # a self-import
        "h": {"outside"},  # edges to unknown nodes are ignored
    }
    assert import_cycles(graph) == [["a", "b", "c"], ["d", "e"], ["g"]]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    report = describe(import_cycles(graph), graph)
    assert "3 import circle(s)" in report and "c -> a" in report and "e -> d" in report


def test_cycle_finder_on_a_long_chain() -> None:
    n = 5000  # deeper than Python's default recursion limit
    chain = {str(i): {str(i + 1)} for i in range(n)} | {str(n): {"0"}}
    assert import_cycles(chain) == [sorted(chain)]


def test_import_collection(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from pkg.a import A\nfrom . import b\n",
        "pkg/a.py": (
            "from typing import TYPE_CHECKING\nimport typing\n"
            "if TYPE_CHECKING:\n    from pkg.c import C\n"
            "if typing.TYPE_CHECKING:\n    import pkg.d\nelse:\n    import pkg.sub.e\n"
            "A = 1\n"
        ),
        "pkg/b.py": "def f():\n    from .sub import e, E\n    return e, E\n",
        "pkg/c.py": "import os\nfrom pkg import a\n",
        "pkg/d.py": "",
        "pkg/sub/__init__.py": "from .e import E\nfrom .. import d\n",
        "pkg/sub/e.py": "from ..c import x\nE = 1\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": {"pkg.a", "pkg.b"},
        "pkg.a": {"pkg.sub.e"},  # the TYPE_CHECKING imports are left out, their else is not
        "pkg.b": {"pkg.sub", "pkg.sub.e"},  # in a function; E is a name, so pkg.sub is imported
        "pkg.c": {"pkg.a"},  # from pkg import a: the submodule only
        "pkg.d": set(),
        "pkg.sub": {"pkg.sub.e", "pkg.d"},
        "pkg.sub.e": {"pkg.c"},
    }
    assert import_cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.e"]]


@pytest.mark.parametrize("test", ["TYPE_CHECKING", "typing.TYPE_CHECKING", "t.TYPE_CHECKING"])
def test_type_checking_tests(test: str) -> None:
    expr = ast.parse(test, mode="eval").body
    assert _is_type_checking(expr)
    assert not _is_type_checking(ast.parse("DEBUG", mode="eval").body)
