"""Task knowledge lives in ``seqlab.tasks``: no code outside it branches on a task's name.

A branch is a comparison between something named like a task (``task``, ``model.task.name``,
``ds.task``, ``task_name``) and a registered task name, or a collection of them. Code elsewhere
asks the task what it declares (``causal``, ``decodes_free``, ``probe_rows``, ...) instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

from seqlab.tasks import TASKS

SRC = Path(__file__).resolve().parents[1] / "src" / "seqlab"


def _names(node: ast.AST) -> set[str]:
    """Registered task names written literally in ``node`` (a string, or a tuple/list/set of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in TASKS:
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_names(e) for e in node.elts)) if node.elts else set()
    return set()


def _mentions_task(node: ast.AST) -> bool:
    return "task" in ast.unparse(node).lower()


def task_branches(source: str, filename: str = "<src>") -> list[str]:
    """``file:line: code`` for each comparison of a task-like value with a literal task name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        literal = set().union(*(_names(s) for s in sides))
        if literal and any(_mentions_task(s) for s in sides if not _names(s)):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checker_finds_branches() -> None:
    src = 'if model.task.name == "lm": pass\nif ds.task in ("labeling", "generation"): pass\nif x == "lm": pass\n'
    assert [b.split(":")[1] for b in task_branches(src)] == ["1", "2"]
    assert task_branches('if task.causal and mode == "sample": pass\n') == []


def test_no_task_name_branches_outside_tasks() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "tasks" in path.relative_to(SRC).parts[:1]:
            continue
        found += task_branches(path.read_text(encoding="utf-8"), str(path.relative_to(SRC)))
    assert not found, "task-name branches outside seqlab.tasks (ask the task instead):\n" + "\n".join(found)
