"""A lesson's demonstrations: the cells that show, time and plot, and grade nothing.

A demonstration is a locked cell whose grade_id starts with `demo_`. The grader leaves it out
(sandboxed_execute.py) unless `compatlab grade --run-demos`: what it takes is the lessons'
waiting (paced streams, concurrency tables, timing plots), and no test reads what it made.
Locked, because nbgrader puts a locked cell's source back from the gradebook before the
grader runs anything: what is left out is always the lesson's code, never a learner's.

`leaks` is the authoring rule that keeps it so, checked by `compatlab release`: a demonstration
is locked, is no exercise or test, and binds no name that a later cell reads and no other
cell binds.
"""

import ast
import builtins

from compatlab.grader.cell_ast import parse_cell

PREFIX = "demo_"


def is_demo(cell) -> bool:
    return cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade_id", "").startswith(PREFIX)


def leaks(nb) -> list[str]:
    """What breaks the rule in a lesson's master notebook, one sentence each (empty: nothing)."""
    problems, demo_names = [], {}
    cells = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    others = set().union(*(_bound(cell.source) for _, cell in cells if not is_demo(cell)))
    for index, cell in cells:
        info = cell.metadata.get("nbgrader", {})
        if is_demo(cell):
            if not info.get("locked") or info.get("grade") or info.get("solution"):
                problems.append(f"{info['grade_id']}: a demonstration must be a locked cell, no exercise or test")
            for name in _bound(cell.source) - others:
                demo_names.setdefault(name, info["grade_id"])
            continue
        for name in sorted(_read(cell.source) & demo_names.keys()):
            problems.append(f"cell {info.get('grade_id') or index + 1} reads {name!r}, which only the demonstration "
                            f"{demo_names[name]} binds: the grader leaves that one out")
    return problems


def _tree(source: str) -> ast.Module:
    return parse_cell(source) or ast.Module(body=[], type_ignores=[])


def _bound(source: str) -> set[str]:
    """The names a cell binds in the notebook's namespace (not inside its functions and classes)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(_tree(source))
    return names


def _read(source: str) -> set[str]:
    """The names a cell reads, anywhere in it (its functions read the namespace when called)."""
    return {node.id for node in ast.walk(_tree(source))
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)} - set(dir(builtins))
