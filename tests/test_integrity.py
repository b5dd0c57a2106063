"""The integrity scan: each construct that reaches into the grader is named by cell and line; no
honest submission of the sample class, and no line of the released lessons, is flagged."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from compatlab.grader.course import REPO, Course
from compatlab.grader.grade import Lesson
from compatlab.grader.integrity import lesson_bindings, names_read, scan
from compatlab.grader.release import sample_class

LESSON_CODE = '''import httpx
import numpy as np
ENGINES = {"ollama": "http://127.0.0.1:1"}
class Usage:
    pass
'''


TEST_CODE = "assert isinstance(read_usage({}), Usage) and len(ENGINES) == 1"


def findings(code: str) -> list[str]:
    notebook = new_notebook(cells=[new_code_cell(LESSON_CODE), new_code_cell(code)])
    return [str(f) for f in scan(notebook, {1}, lesson_bindings([LESSON_CODE]), test_names=names_read([TEST_CODE]))]


@pytest.mark.parametrize("code, found", [
    ("get_ipython().set_custom_exc((Exception,), lambda *a: None)", "calls get_ipython()"),
    ("ip = get_ipython()\nip.kernel.do_execute = None", ".do_execute: touches the kernel's execution"),
    ("import sys\nsys.displayhook(15)", ".displayhook: touches the display hook"),
    ("import sys\nf = sys._getframe(1)", "._getframe: reads the interpreter's frames"),
    ("import inspect\nsource = inspect.currentframe().f_back.f_code", ".f_back: walks up the call stack"),
    ("import ctypes", "imports ctypes: ctypes (raw memory)"),
    ("import gc\ngc.get_objects()", "imports gc"),
    ("import builtins\nbuiltins.isinstance = lambda *a: True", "changes builtins.isinstance"),
    ("__builtins__.len = None", "touches __builtins__"),
    ("np.allclose = lambda *a, **k: True", "changes np.allclose, an attribute of a module the tests may use"),
    ("setattr(httpx, 'post', None)", "setattr() on httpx: changes what the tests use"),
    ("ENGINES['ollama'] = 'http://evil'", "changes ENGINES[...], which the lesson defined"),
    ("ENGINES.update(ollama='x')", "ENGINES.update(): changes ENGINES, which the lesson defined"),
    ("Usage.__eq__ = lambda s, o: True", "changes Usage.__eq__, which the lesson defined"),
    ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)", "signal.signal(): installs signal handling"),
    ("import os\nos.kill(1, 9)", "os.kill(): signals other processes"),
    ("exec('x = 1')", "exec(): runs code built at run time"),
    ("leak = In[-1]", "reads In: the kernel's history holds the tests' source"),
    ("globals()['Usage'] = 1", "writes through globals()"),
    ("isinstance = lambda *a: True", "rebinds isinstance, which the tests use"),
    ("import inspect as i\nlines = i.stack(context=30)[1].code_context", "inspect.stack: reads the call stack"),
    ("import traceback\ntext = traceback.format_stack()", "traceback.format_stack: reads the call stack"),
    ("from linecache import getlines", "imports linecache"),
    ("import __main__\nleak = vars(__main__)['In']", "reads In by name"),
    ("leak = getattr(__import__('__main__'), '_ih')", "reads _ih by name"),
    ("class Fake:\n    __module__ = 'json'", "sets __module__ in a class"),
    ("class Fake:\n    __class__ = property(lambda self: Usage)", "sets __class__ in a class"),
    ("class Usage:\n    pass", "rebinds Usage, which the tests use"),
    ("import sys\nsys.modules['json'] = None", "changes sys.modules[...]"),
])
def test_each_construct_is_flagged_with_its_cell_and_line(code, found):
    flagged = findings(code)
    assert any(found in line for line in flagged), flagged
    assert all(line.startswith("cell 2 line ") for line in flagged)


@pytest.mark.parametrize("code", [
    "def content_text(content):\n    reply = {}\n    reply['text'] = content\n    return reply",  # locals share lesson names
    "def f(ENGINES):\n    ENGINES['x'] = 1",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 120",
    "%timeit sum(range(10))",  # a magic becomes get_ipython() only in the rewrite
    "usage = Usage()\nusage.prompt_tokens = 3",
    "def broken(:\n",  # a syntax error is the learner's problem, not a finding
    "def read_usage(usage):\n    len = 3\n    return len",  # locals shadow nothing the tests see
    "format = {'type': 'object'}",  # a builtin's name the tests do not use
    "import numpy as np\nboth = np.stack([[1], [2]])",  # numpy's stack is not the call stack
    "import traceback\ndef f():\n    try:\n        1 / 0\n    except ZeroDivisionError:\n        return traceback.format_exc()",
])
def test_ordinary_code_is_not_flagged(code):
    assert findings(code) == []


def test_line_numbers_are_the_cells_own_even_when_ipython_rewrites_it():
    assert findings("\n\n%time x = 1\nimport ctypes") == ["cell 2 line 4: imports ctypes: ctypes (raw memory)"]
    assert findings("\n\nimport ctypes") == ["cell 2 line 3: imports ctypes: ctypes (raw memory)"]


def test_a_cell_too_deep_for_the_scan_is_a_finding_not_a_crash():
    for terms in (600, 30_000):  # too deep for the scan's walk; too deep for Python's own parser
        assert findings("total = " + " + ".join(["1"] * terms)) == \
            ["cell 2: the scan could not read this cell: it nests too deeply"], terms


def test_no_honest_sample_submission_is_flagged():
    """Every sample submission (the solution, the blank release, every known mistake) is honest."""
    course = Course()
    lessons = {name: Lesson(course, name) for name in course.assignments()}
    submitted = REPO / "data" / "sample-class" / "submitted"
    flagged = {}
    for student in sample_class(course):
        notebook = nbformat.read(submitted / student.name / student.assignment / f"{student.assignment}.ipynb", 4)
        if found := lessons[student.assignment].scan(notebook):
            flagged[(student.name, student.assignment)] = [str(f) for f in found]
    assert flagged == {}


def test_the_lessons_own_released_code_is_never_the_learners():
    course = Course()
    for name in course.assignments():
        released = nbformat.read(course.lessons / name / f"{name}.ipynb", 4)
        assert Lesson(course, name).scan(released) == [], name
