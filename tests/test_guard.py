"""The kernel's guard, cell by cell, in one real sandbox: what a learner's cell patches is put
back before the next cell and reported; the lesson's names and data are the lesson's again in
every test cell, and the learner's own come back after it; test cells compare strictly."""

import hashlib
import json
import textwrap

import pytest

from attacks import FORGED_END

from compatlab.grader import sandbox, strict, warm

LESSON = '''
import json
ENGINES = {"ollama": "http://127.0.0.1:1"}
class Usage:
    def __init__(self, n):
        self.n = n
'''
FORGE = "def forged():\n" + textwrap.indent(FORGED_END, "    ")
CELLS = [
    ("lesson", LESSON),
    ("student", "import sys\nsys.settrace(lambda *a: None)"),
    ("student", "print('trace after a cell:', sys.gettrace())"),
    ("student", "class Anything:\n    def __eq__(self, other): return True\n    __hash__ = None\n"
                "ENGINES['ollama'] = Anything()\nENGINES['extra'] = 1\nlen = lambda x: 99\n"
                "Usage = None\njson.loads = lambda *a, **k: {}"),
    ("test", "assert ENGINES == {'ollama': 'http://127.0.0.1:1'}, ENGINES\nassert len([1]) == 1\n"
             "assert Usage(3).n == 3\nassert json.loads('[1]') == [1]"),
    ("student", "print('after the test:', len([1]), Usage, ENGINES.get('extra'))"),
    ("student", "def answer():\n    return Anything()"),
    ("test", "assert answer() == 'Hello.'"),
    ("student", FORGE),
    ("test", "assert forged() == 'Hello.'"),
    ("student", "print('the kernel goes on')"),
]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    box = sandbox.prepare(tmp_path_factory.mktemp("box"), sandbox.Limits(cell_timeout=60), True)
    box.slot, lock = sandbox.claim_slot(sandbox.Path(box.root))
    box.uids, users = sandbox.claim_users()
    sources = [strict.rewrite(source) if role == "test" else source for role, source in CELLS]
    job = {"cells": [{"index": i, "source": source, "role": role, "label": f"cell {i + 1}"}
                     for i, ((role, _), source) in enumerate(zip(CELLS, sources))],
           "limits": {name: getattr(box.limits, name) for name in
                      ("cell_timeout", "notebook_timeout", "cell_output_bytes", "notebook_output_bytes", "message_bytes")},
           "kernel": {"prefix": sandbox.kernel_prefix(box), "env": sandbox.kernel_env(box, {}), "reserved_ports": []},
           "guard": {"roles": {hashlib.sha256(source.encode()).hexdigest(): role
                               for (role, _), source in zip(CELLS, sources) if role != "student"},
                     "watch": [["json", "loads"]]}}
    template = warm.Template(sandbox.kernel_env(box, {}))  # as `compatlab grade` runs it, as root
    try:
        outcome = sandbox.run(box, job, template)
    finally:
        template.stop()
    result = json.loads(outcome.result)
    assert "error" not in result, (result, outcome.log[-2000:])
    return {entry["index"]: entry["outputs"] for entry in result["cells"]}, result["review"]


def text(outputs) -> str:
    return "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")


def errors(outputs) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for o in outputs if o["output_type"] == "error"]


def test_a_trace_function_does_not_outlive_its_cell(ran):
    cells, review = ran
    assert text(cells[2]) == "trace after a cell: None\n"
    assert "cell 2: the notebook's code changed sys.settrace while this cell ran" in review


def test_a_test_cell_sees_the_lessons_names_data_and_modules(ran):
    cells, _ = ran
    assert errors(cells[4]) == []  # ENGINES as the lesson made it, the real len, Usage and json.loads


def test_the_learners_own_bindings_come_back_after_the_test(ran):
    cells, _ = ran
    assert text(cells[5]) == "after the test: 99 None None\n"  # extra was the lesson's data, restored


def test_an_object_that_equals_everything_fails_the_test_and_says_why(ran):
    cells, review = ran
    [error] = errors(cells[7])
    assert error.startswith("Refused: a test compared a value of class Anything with ==")
    assert any(note.startswith("cell 8: a test compared a value of class Anything") for note in review)


def test_a_test_whose_end_was_forged_does_not_count(ran):
    cells, review = ran
    assert any("the kernel answered this cell twice" in error for error in errors(cells[9])), errors(cells[9])
    assert any(note.startswith("cell 10: the kernel answered this cell twice") for note in review)
    assert text(cells[10]) == "the kernel goes on\n"
