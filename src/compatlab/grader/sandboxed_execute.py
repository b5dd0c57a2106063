"""nbgrader's Execute step, done in a sandbox: the grader's side.

`compatlab grade` runs nbgrader's autograde as usual (as root on a grading machine), on trees only
the grader writes: the submission arrives there already checked and rewritten (intake.py), and
the autograded notebook, the gradebook and feedback never meet student code. The one step that
runs student code, Execute, is replaced by `SandboxedExecute`:

1. it marks each code cell's role, from the gradebook: the lesson's test cells, the lesson's own
   locked cells, its demonstrations (demos.py: left out unless `compatlab grade --run-demos`), and
   the learner's cells;
2. it sends the code cells, their roles and the limits to a fresh sandbox (sandbox.py), where
   the runner executes them (runner.py, execute.py) and the guard watches (guard.py); test
   cells go with strict comparisons (strict.py), so no returned object decides its own test;
3. it reads back one JSON result, capped in size, checks it against the notebook format, and
   copies each cell's outputs into the notebook it holds, whose sources never left its hands.
   Partial credit from a test cell's `execute_result` is not accepted: a test passes or fails.

When no result comes back, the notebook is not graded, and the reason is kept for the table.

With `compatlab grade --cluster`, `RemoteExecute` does the same, except that step 2 happens on a
Dask cluster's worker (cluster.py): the same job goes out (plan_job), and what comes back goes
through the same checks (apply_outcome), so a notebook's grades do not depend on where it ran.
"""

import ast
import hashlib
import json
import os
import sys
from dataclasses import dataclass

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from compatlab.grader import demos, strict, warm
from compatlab.grader import sandbox as sandboxes
from compatlab.grader.cell_ast import parse_cell
from compatlab.grader.safe_text import plain

MAX_NOTES = 20
NOT_RUN = ("A demonstration: the grader leaves it out, since it grades nothing (it ran in your own notebook; "
           "`compatlab grade --run-demos` runs it too).\n")


class SandboxFailure(Exception):
    """The sandbox gave no usable result: the submission cannot be graded."""


class SandboxedExecute(NbGraderPreprocessor):
    sandbox = Unicode(help="the Sandbox, as JSON (sandbox.Sandbox.to_json)").tag(config=True)
    failures: dict[str, str] = {}  # "student/assignment" -> why it could not be graded, for the table
    spare: "sandboxes.Spare | None" = None  # a pool's worker keeps the next sandbox booting (workers.py)

    def preprocess(self, nb, resources):
        student, assignment = resources["nbgrader"]["student"], resources["nbgrader"]["assignment"]
        key = f"{student}/{assignment}"
        self.failures.pop(key, None)
        try:
            return self._execute(nb, resources), resources
        except SandboxFailure as exc:
            self.failures[key] = str(exc)
            raise

    def _execute(self, nb, resources):
        box = sandboxes.Sandbox.from_json(self.sandbox)
        plan = plan_job(nb, resources, box.limits)
        outcome = self._run(box, plan, resources)
        self._log(resources, outcome)
        return apply_outcome(nb, plan, outcome)

    def _run(self, box: sandboxes.Sandbox, plan: "Plan", resources) -> sandboxes.Outcome:
        """Run the job in a sandbox of this machine, with its kernel settings filled in here."""
        return sandboxes.run(box, sandboxes.complete_job(box, plan.job, plan.job["environment"]), warm.current(),
                             self.spare)

    def _log(self, resources, outcome) -> None:
        """The sandbox's terminal output, capped, into the grading log (stderr of this worker)."""
        text = outcome.log.decode("utf-8", errors="replace")
        header = f"--- sandbox of {resources['nbgrader']['student']}/{resources['nbgrader']['assignment']}"
        print(header, plain(text, limit=None, keep_lines=True), sep="\n", file=sys.stderr, flush=True)


class RemoteExecute(SandboxedExecute):
    """SandboxedExecute whose sandbox runs on a Dask cluster's worker (cluster.py): the same job
    goes out, and the same checks read what comes back; only where it runs differs."""

    cluster = Unicode(help="the Dask scheduler's address").tag(config=True)

    def _run(self, box, plan, resources):
        from compatlab.grader import cluster

        name = f"{resources['nbgrader']['student']}-{resources['nbgrader']['assignment']}"
        return cluster.run_remote(self.cluster, plan.job, box.limits, name)


@dataclass
class Plan:
    """What goes to a sandbox for one notebook (`job`: the parts that are the same on every machine)
    and what the grader keeps to read the result (each cell's role, the indices of the code cells
    sent and of the demonstrations left out)."""

    job: dict
    roles: list[str]
    code: list[int]
    demos: list[int]


def plan_job(nb, resources, limits: sandboxes.Limits) -> Plan:
    """The job for one notebook: its code cells (strictly rewritten tests; the notebook keeps the
    originals), their roles and labels, the runner's limits, the guard's settings, and the
    allowlisted variables of the grader's environment. Nothing of this machine: where the
    engines are and which users run the kernel are filled in where it runs (sandbox.complete_job)."""
    roles = cell_roles(nb, resources["nbgrader"])
    if limits.run_demos:
        roles = ["lesson" if role == "demo" else role for role in roles]
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and roles[i] != "demo"]
    left_out = [i for i, role in enumerate(roles) if role == "demo"]
    lesson = [nb.cells[i].source for i in code if roles[i] != "student"]
    tests = [nb.cells[i].source for i in code if roles[i] == "test"]
    sources = {i: strict.rewrite(nb.cells[i].source) if roles[i] == "test" else nb.cells[i].source for i in code}
    job = {"cells": [{"index": i, "source": sources[i], "role": roles[i], "label": label(nb.cells[i], i)}
                     for i in code],
           "limits": {name: getattr(limits, name) for name in
                      ("cell_timeout", "notebook_timeout", "cell_output_bytes", "notebook_output_bytes",
                       "message_bytes")},
           "environment": {name: os.environ[name] for name in sandboxes.ENVIRONMENT if name in os.environ},
           "guard": {"roles": {digest(sources[i]): roles[i] for i in code if roles[i] != "student"},
                     "watch": watched_attributes(lesson, tests)}}
    return Plan(job, roles, code, left_out)


def apply_outcome(nb, plan: Plan, outcome: sandboxes.Outcome):
    """The sandbox's result, checked (read_result), copied into the notebook the grader holds:
    outputs only, never a test cell's execute_result (no partial credit)."""
    result = read_result(outcome, set(plan.code))
    for entry in result["cells"]:
        cell = nb.cells[entry["index"]]
        outputs = [nbformat.from_dict(o) for o in entry["outputs"]]
        if plan.roles[entry["index"]] == "test":  # no partial credit: nbgrader would read it from here
            outputs = [o for o in outputs if o.get("output_type") != "execute_result"]
        cell.outputs, cell.execution_count = outputs, entry["execution_count"]
    for index in plan.demos:
        nb.cells[index].outputs = [nbformat.v4.new_output("stream", name="stdout", text=NOT_RUN)]
    try:
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 -- jsonschema's errors, RecursionError
        raise SandboxFailure(f"the sandbox returned outputs that are not notebook outputs ({type(exc).__name__})") from None
    nb.metadata["compatlab"] = {"review": result["review"]}
    return nb


def digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def label(cell, index: int) -> str:
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    return f"cell {grade_id}" if grade_id else f"cell {index + 1}"


def cell_roles(nb, info: dict) -> list[str]:
    """Each cell's role by its grade_id and the gradebook (not by metadata the learner could
    edit): "test" for the lesson's test cells, "demo" for its locked demonstrations, "lesson" for
    its other locked cells. A locked cell's source is the lesson's: nbgrader's OverwriteCells
    put it back before this step, so a demonstration left out is always the lesson's own code."""
    with Gradebook(info["db_url"]) as gradebook:
        notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
        locked = {cell.name for cell in notebook.source_cells if cell.locked}
        tests = {cell.name for cell in notebook.grade_cells if cell.cell_type == "code"} & locked
    roles = []
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        roles.append("test" if grade_id in tests else "student" if grade_id not in locked
                     else "demo" if demos.is_demo(cell) else "lesson")
    return roles


def watched_attributes(lesson: list[str], tests: list[str]) -> list[tuple[str, str]]:
    """The module attributes the tests use (`json.loads`, `np.allclose`, `from struct import
    pack`), as (module, attribute): the guard keeps them from being patched."""
    aliases: dict[str, str] = {}
    for tree in _parse(lesson):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for name in node.names:
                    aliases[name.asname or name.name.split(".")[0]] = name.name if name.asname else name.name.split(".")[0]
    found = set()
    for tree in _parse(tests):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                found.add((aliases[node.value.id], node.attr))
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.update((node.module, name.name) for name in node.names if name.name != "*")
    return sorted(found)


def _parse(sources: list[str]):
    return (tree for tree in map(parse_cell, sources) if tree is not None)


def read_result(outcome, code_cells: set[int]) -> dict:
    """The runner's result, checked: JSON, the right shape, only cells that exist."""
    if outcome.problem:
        raise SandboxFailure(outcome.problem)
    try:
        result = json.loads(outcome.result)
    except RecursionError:
        raise SandboxFailure("the sandbox's result nests too deeply") from None
    except ValueError:
        raise SandboxFailure("the sandbox ended without a result (see grading.log)") from None
    if not isinstance(result, dict):
        raise SandboxFailure("the sandbox's result is not a JSON object")
    if "error" in result:
        raise SandboxFailure(f"the notebook could not be run: {plain(str(result['error']), limit=300)}")
    cells = result.get("cells")
    if not isinstance(cells, list) or not all(_cell_shape(entry, code_cells) for entry in cells):
        raise SandboxFailure("the sandbox's result does not describe this notebook's cells")
    if len({entry["index"] for entry in cells}) != len(cells):
        raise SandboxFailure("the sandbox's result names a cell twice")
    notes = result.get("review") if isinstance(result.get("review"), list) else []
    return {"cells": cells, "review": [plain(str(note), limit=300) for note in notes[:MAX_NOTES]]}


def _cell_shape(entry, code_cells: set[int]) -> bool:
    return (isinstance(entry, dict) and type(entry.get("index")) is int and entry["index"] in code_cells
            and isinstance(entry.get("outputs"), list) and all(isinstance(o, dict) for o in entry["outputs"])
            and (entry.get("execution_count") is None or type(entry.get("execution_count")) is int))
