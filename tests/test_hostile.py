"""Hostile submissions: `compatlab grade` contains each one, scores it as it deserves, and keeps
every honest student's exact score.

One class, graded once (sandboxed, two workers, 10 s per cell, 90 s per notebook), as root in
CI: tolerant-client notebooks, each the reference solution or the blank release with cells
rewritten to attack the grader, plus unreadable submissions and names built to attack the
console, beside honest students whose scores are known. An attack reports what it managed by
printing `HOSTILE {json}` lines, which the tests read back from the graded notebook.

The attack classes, each with its test below: links, FIFOs and sockets planted for root; the
runtime folder squatted; unreadable notebooks; forged scores (displayhook, custom exception
handlers, the kernel's do_execute, input transformers, shadowed names, objects equal to
everything, patched classes and modules, widgets, clear_output, a silenced guard, threads,
deleted tests, flooded output); hidden tests and the environment leaking into feedback; memory,
processes, disk, output and time beyond the limits; escape sequences and markup on the console.
"""

import csv
import html
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest
from attacks import FORGED_END

from compatlab.grader import strict
from compatlab.grader.course import REPO

LESSON = "tolerant-client"
SAMPLE = REPO / "data" / "sample-class" / "submitted"
REFERENCE = SAMPLE / "reference-solution" / LESSON / f"{LESSON}.ipynb"
BLANK = SAMPLE / "blank-release" / LESSON / f"{LESSON}.ipynb"
MASTER = REPO / "solutions" / LESSON / f"{LESSON}.py"
ANSWERS = {"content_text": "content", "tool_arguments": "raw", "read_usage": "usage", "sse_payloads": "lines",
           "join_tool_calls": "fragments", "chat": "base_url, model, messages, **options"}
TESTS = ["test_content_text", "test_tool_arguments", "test_read_usage", "test_sse_payloads", "test_join_tool_calls",
         "test_chat", "test_chat_errors"]
SECRET = f"hostile-secret-{uuid.uuid4().hex}"

REPORT = '''
import json as _json
def report(**found):
    print("HOSTILE " + _json.dumps(found, default=str), flush=True)
def attempt(action):
    try:
        return f"done: {action()!r}"[:300]
    except BaseException as exc:
        return f"failed: {type(exc).__name__}: {exc}"[:300]
'''


def _plot_cell() -> str:
    """The id of the lesson's unlocked plot cell (it builds a table of what chunks carry), where
    most attacks go: a learner's own code cell that is neither an answer nor a test."""
    from compatlab.grader.course import read_master

    return next(c.id for c in read_master(MASTER).cells
                if c.cell_type == "code" and c.source.startswith("import pandas as pd\n\nKINDS"))


PLOT_CELL = _plot_cell()


def answer(grade_id: str) -> str:
    """The reference answer of one exercise, as the learner would have written it."""
    text = MASTER.read_text().split(f'"grade_id": "{grade_id}"')[1].split("\n# %%")[0]
    return "\n".join(line for line in text.splitlines()[1:] if "###" not in line)


def every_answer(body: str) -> dict[str, str]:
    """Every exercise answered with the same body (a forgery), by function name."""
    return {name: f"def {name}({args}):\n" + "\n".join("    " + line for line in body.splitlines())
            for name, args in ANSWERS.items()}


# Each hostile student: (base notebook, {cell id: new source}, [sources of cells inserted after setup],
# [cell ids removed]). {victim}, {gradebook} and {host_port} are filled in by the test.
HOSTILE = {
    # ---------------------------------------------------------------- the host, through root
    "plants-links": (REFERENCE, {PLOT_CELL: REPORT + '''
import os, pathlib
dirs = sorted({"/tmp", os.getcwd(), os.environ.get("HOME", "/tmp")})
names = ["tolerant-client.ipynb", "gradebook.db", "timestamp.txt"]
made = []
for d in dirs:
    for name in names:
        path = pathlib.Path(d) / name
        for target in ("{victim}", "/dev/null", "{gradebook}", "/etc/passwd"):
            made.append(attempt(lambda: (path.unlink(missing_ok=True), path.symlink_to(target))))
    made.append(attempt(lambda: os.mkfifo(pathlib.Path(d) / "fifo.ipynb")))
mounts = [line.split()[4] for line in open("/proc/self/mountinfo")]
report(made=made[:3],
       victim_write=attempt(lambda: open("{victim}", "w").write("pwned")),
       victim_chmod=attempt(lambda: os.chmod("{victim}", 0o777)),
       devnull_chmod=attempt(lambda: os.chmod("/dev/null", 0o444)),
       gradebook=attempt(lambda: open("{gradebook}", "wb").write(b"x")),
       writable=[m for m in mounts if attempt(lambda m=m: pathlib.Path(m, ".probe").write_text("x")).startswith("done")])
'''}, [], []),
    "aa-squats-sockets": (REFERENCE, {PLOT_CELL: REPORT + '''
import os, socket
bound, held = [], []
for d in sorted({"/tmp", os.getcwd(), os.environ.get("HOME", "/tmp"), os.environ.get("JUPYTER_RUNTIME_DIR", "/tmp")}):
    for i in range(20):
        for channel in ("shell", "iopub", "stdin", "control", "hb"):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.bind(f"{d}/kernel-{i}-{channel}")
                held.append(s)
                bound.append(d)
            except OSError:
                pass
            try:
                os.symlink("/nonexistent", f"{d}/kernel-{i}-{channel}.json")
            except OSError:
                pass
for port in range(40000, 40300):
    try:
        s = socket.socket()
        s.bind(("127.0.0.1", port))
        s.listen()
        held.append(s)
    except OSError:
        pass
report(sockets=len(bound), ports=len(held) - len(bound))
'''}, [], []),
    # ---------------------------------------------------------------- forged scores (blank answers)
    "forge-displayhook": (BLANK, every_answer("import sys\nsys.displayhook(2.0)  # nbgrader reads this as partial credit\n"
                                              "raise NotImplementedError"), [], []),
    "forge-custom-exc": (BLANK, {}, ["get_ipython().set_custom_exc((BaseException,), "
                                     "lambda shell, etype, value, tb, tb_offset=None: None)"], []),
    "forge-do-execute": (BLANK, {}, ['''
kernel = get_ipython().kernel
async def do_execute(*args, **kwargs):
    return {"status": "ok", "execution_count": kernel.execution_count, "payload": [], "user_expressions": {}}
async def method(self, *args, **kwargs):
    return await do_execute()
kernel.do_execute = do_execute
type(kernel).do_execute = method
'''], []),
    "forge-line-transforms": (BLANK, {}, ['''
def drop_checks(lines):
    return [line for line in lines if not line.lstrip().startswith(("assert", "raise"))]
get_ipython().input_transformer_manager.line_transforms.append(drop_checks)
get_ipython().input_transformers_cleanup.append(drop_checks)
'''], []),
    "forge-shadows-names": (BLANK, {}, ['''
isinstance = lambda *args, **kwargs: True
list = lambda *args: [{"n": 1}, {"n": 2}]
str = lambda *args: "Hello."
EngineError = BaseException
Usage = lambda *args, **kwargs: None
AssertionError = None
'''], []),
    "forge-equals-everything": (BLANK, every_answer('''class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __contains__(self, item): return True
    def __iter__(self): return iter([{"n": 1}, {"n": 2}])
    def __getattr__(self, name): return Anything()
    def __hash__(self): return 0
return Anything()'''), [], []),
    "forge-patches-classes": (BLANK, {**every_answer("return Usage(0, 0, 0)")}, ['''
Usage.__eq__ = lambda self, other: True
Reply.__eq__ = lambda self, other: True
ToolCall.__eq__ = lambda self, other: True
import dataclasses
dataclasses.fields = lambda obj: ()
'''], []),
    "forge-widget-capture": (BLANK, every_answer('''import uuid
kernel = get_ipython().kernel
parent = kernel.get_parent("shell")
state = {"_model_module": "@jupyter-widgets/output", "_model_name": "OutputModel", "msg_id": parent["header"]["msg_id"]}
kernel.session.send(kernel.iopub_socket, "comm_open", {"comm_id": uuid.uuid4().hex, "target_name": "jupyter.widget",
                    "data": {"state": state, "buffer_paths": []}}, parent=parent)
raise NotImplementedError'''), [], []),
    "forge-clears-output": (BLANK, every_answer('''from IPython.display import clear_output
get_ipython().events.register("post_run_cell", lambda result: clear_output())
get_ipython().events.register("post_execute", lambda: clear_output())
raise NotImplementedError'''), [], []),
    "forge-silences-guard": (BLANK, {}, ['''
ip = get_ipython()
for event in ("pre_run_cell", "post_run_cell"):
    ip.events.callbacks[event].clear()
ip.set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
'''], []),
    "forge-thread": (BLANK, {}, ['''
import builtins, threading, time
def keep_patching():
    while True:
        builtins.isinstance = lambda *args, **kwargs: True
        builtins.NotImplementedError = type("Quiet", (Exception,), {})
        time.sleep(0.001)
threading.Thread(target=keep_patching, daemon=True).start()
'''], []),
    "forge-deletes-tests": (BLANK, {}, [], TESTS),
    "forge-floods-then-fails": (BLANK, {}, ['for i in range(1200):\n    print("x" * 10_000)'], []),
    "forge-patches-modules": (BLANK, {}, [REPORT + '''
import json, sys, types
json.loads = lambda *args, **kwargs: {"city": "Paris"}
sys.modules["json"] = types.SimpleNamespace(loads=json.loads)
'''], []),
    "forge-mock-any": (BLANK, every_answer("from unittest.mock import ANY\nreturn ANY"), [], []),
    "forge-disguised-class": (BLANK, every_answer('''class Disguised:
    __module__ = "json"
    __class__ = property(lambda self: EngineError)
    def __eq__(self, other): return True
    def __bool__(self): return True
    def __contains__(self, item): return True
    def __hash__(self): return 0
return Disguised()'''), [], []),
    "forge-sends-replies": (BLANK, every_answer(FORGED_END), [], []),
    "forge-too-deep-to-scan": (BLANK, {}, ["import sys\ntotal = " + " + ".join(["1"] * 600)
                                           + "\nsys.displayhook(2.0)"], []),
    "hoards-engine-connections": (REFERENCE, {PLOT_CELL: REPORT + '''
import json, os, resource, socket
engines = json.loads(os.environ["COMPATLAB_ENGINES"])
port = int(engines["ollama"].rsplit(":", 1)[1])
held, refused = [], 0
report(files=resource.getrlimit(resource.RLIMIT_NOFILE),
       raise_limit=attempt(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (100_000, 100_000))))
for attempt_number in range(2000):
    try:
        held.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
    except OSError:
        refused += 1
    if attempt_number % 50 == 0:
        report(held=len(held), refused=refused)
'''}, [], []),
    # ---------------------------------------------------------------- leaks into feedback
    "leaks-tests-and-env": (BLANK, {
        "content_text": "def content_text(content):\n    raise ValueError('\\n'.join(In))",
        "tool_arguments": "import inspect, linecache\ndef tool_arguments(raw):\n"
                          "    caller = inspect.stack()[1]\n"
                          "    raise ValueError(''.join(linecache.getlines(caller.filename)))",
        "read_usage": REPORT + "import os\nreport(env=sorted(os.environ))\n"
                      "def read_usage(usage):\n    raise ValueError(repr(dict(os.environ)))",
        "sse_payloads": "def sse_payloads(lines):\n    raise ValueError('x' * 100_000)\n    yield",
    }, [], []),
    # ---------------------------------------------------------------- limits
    "ignores-sigint": (REFERENCE, {"read_usage": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                                 "while True:\n    pass"}, [], []),
    "runs-out-the-clock": (REFERENCE, {}, ["import time\ntime.sleep(9)"] * 11, []),
    # the children start right after setup and are counted in the plot cell, so the kills have
    # the lesson's cells and the plot cell's own 9 s (under the 10 s cell limit) to arrive
    "memory-children": (REFERENCE, {PLOT_CELL: REPORT + '''
import os, time
def dead(pid):
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:  # reaped already (the guard reaps zombies)
        return True
start = time.monotonic()  # filling 6 GB takes seconds, more on a busy machine: wait for the kills
while len(killed := [pid for pid in children if dead(pid)]) < 2 and time.monotonic() - start < 9:
    time.sleep(0.2)
report(children_alive=len(children) - len(killed), children_killed=len(killed))
'''}, ['''
import os, time
children = []
for child in range(5):
    pid = os.fork()
    if pid == 0:
        try:
            hog = b"\\x01" * (1200 * 2**20)  # 1.2 GB, every page touched
            time.sleep(60)
        finally:
            os._exit(0)
    children.append(pid)
'''], []),
    "fills-the-disk": (REFERENCE, {PLOT_CELL: REPORT + '''
import os, pathlib
written = {}
for folder in sorted({"/tmp", os.getcwd(), os.environ["HOME"]}):
    path, total = pathlib.Path(folder) / "big.bin", 0
    try:
        with open(path, "wb") as handle:
            for _ in range(64):
                handle.write(b"\\0" * 16 * 2**20)
                total += 16 * 2**20
        outcome = "all of it"
    except OSError as exc:
        outcome = type(exc).__name__ + ": " + str(exc)
    written[folder] = [total // 2**20, outcome]
    path.unlink(missing_ok=True)
report(written=written)
'''}, [], []),
    "floods-displays": (REFERENCE, {PLOT_CELL: REPORT + '''
from IPython.display import display
handle = display("start", display_id=True)
for i in range(3000):
    handle.update("y" * 10_000)
for i in range(2000):
    display({"text/plain": "z" * 10_000}, raw=True, display_id=f"d{i}")
kernel = get_ipython().kernel
for i in range(500):
    kernel.session.send(kernel.iopub_socket, "comm_msg", {"comm_id": "w", "data": {"state": {"v": "w" * 20_000}}},
                        parent=kernel.get_parent("shell"))
report(flooded=True)
'''}, [], []),
    # ---------------------------------------------------------------- the attacks the suite always had
    "infinite-loop": (REFERENCE, {"read_usage": "while True:\n    pass"}, [], []),
    "fork-bomb": (REFERENCE, {"read_usage": REPORT + '''
import os, time
report(fork_bomb="started")
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.05)'''}, [], []),
    "memory-bomb": (REFERENCE, {"content_text": REPORT + '''
report(memory=attempt(lambda: len(bytearray(64 * 2**30))))
hog = []
while True:
    hog.append(bytearray(256 * 2**20))'''}, [], []),
    "reads-solutions": (REFERENCE, {"content_text": REPORT + '''
import compatlab, pathlib
repo = pathlib.Path(compatlab.__file__).resolve().parents[2]
report(solutions=attempt(lambda: (repo / "solutions" / "tolerant-client" / "tolerant-client.py").read_text()[:50]),
       listing=attempt(lambda: sorted(p.name for p in repo.iterdir())),
       gradebook=attempt(lambda: open("{gradebook}", "rb").read(16)),
       others=attempt(lambda: sorted(p.name for p in pathlib.Path("/tmp").iterdir())))
''' + answer("content_text")}, [], []),
    "edits-locked-tests": (REFERENCE, {"content_text": "def content_text(content):\n    return str(content)",
                                       "test_content_text": "pass  # no test here"}, [], []),
    "monkeypatches": (REFERENCE, {"content_text": '''import builtins, re
def content_text(content):
    builtins.isinstance = lambda *args, **kwargs: True  # every later check passes ...
    return "" if content is None else str(content)
ip = get_ipython()
ip.showtraceback = lambda *args, **kwargs: None  # ... and no test failure shows
ip.input_transformers_post.append(  # ... and later cells lose their asserts
    lambda lines: [re.sub(r"^(\\s*)assert .*$", r"\\1pass", line) for line in lines])'''}, [], []),
    "kills-the-engine": (REFERENCE, {"read_usage": REPORT + '''
import os, signal, subprocess
victims = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
report(seen=len(victims), killed=[attempt(lambda p=p: os.kill(p, signal.SIGKILL)) for p in victims])
report(pkill=attempt(lambda: subprocess.run(["pkill", "-9", "-f", "compatlab"]).returncode))
''' + answer("read_usage")}, [], []),
    "calls-out": (REFERENCE, {"read_usage": REPORT + '''
import socket, httpx
report(internet=attempt(lambda: httpx.get("https://pypi.org/simple/", timeout=3).status_code),
       dns=attempt(lambda: socket.gethostbyname("pypi.org")),
       host_port=attempt(lambda: socket.create_connection(("127.0.0.1", {host_port}), timeout=3).close()))
''' + answer("read_usage")}, [], []),
    "floods-output": (REFERENCE, {"content_text": answer("content_text") + '''
for i in range(10_000):
    print("flood " * 100)
'''}, [], []),
    "writes-outside": (REFERENCE, {"content_text": REPORT + '''
import compatlab, pathlib
repo = pathlib.Path(compatlab.__file__).resolve().parents[2]
report(repo=attempt(lambda: (repo / "solutions" / "pwned.txt").write_text("x")),
       source=attempt(lambda: (repo / "src" / "compatlab" / "pwned.py").write_text("x")),
       gradebook=attempt(lambda: open("{gradebook}", "wb").write(b"x")),
       outside=attempt(lambda: pathlib.Path("{victim}").write_text("x")),
       own_folder=attempt(lambda: (pathlib.Path.cwd() / "notes.txt").write_text("mine")))
''' + answer("content_text")}, [], []),
}
HONEST = {"honest": "reference-solution", "honest-wrong": "names-concatenated"}  # 15 and 13 in a clean class
# submissions nobody can read, and names built to attack the console: (student, what goes in the folder)
UNREADABLE = {
    "bad-utf8": b"\xff\xfe not text",
    "nbformat-99": json.dumps({"nbformat": 99, "nbformat_minor": 0, "cells": [], "metadata": {}}).encode(),
    "deep-nesting": b"[" * 50_000 + b"]" * 50_000,
    "evil\x1b[2J\x1b[31m[bold red]boom": REFERENCE.read_bytes(),
    "odd-metadata": json.dumps({**json.loads(REFERENCE.read_text()), "cells": [
        {**json.loads(REFERENCE.read_text())["cells"][0], "metadata": {"nbgrader": "x"}}]}).encode(),
}


def build(source: Path, replace: dict[str, str], insert: list[str], remove: list[str], fill: dict[str, str]):
    notebook = nbformat.read(source, as_version=4)
    by_id = {cell.id: cell for cell in notebook.cells}
    for cell_id, text in replace.items():
        for key, value in fill.items():
            text = text.replace("{" + key + "}", value)
        by_id[cell_id].source = text
    position = notebook.cells.index(by_id["setup"]) + 1
    for offset, text in enumerate(insert):
        notebook.cells.insert(position + offset, nbformat.v4.new_code_cell(text))
    notebook.cells = [cell for cell in notebook.cells if cell.id not in remove]
    return notebook


def write_class(folder: Path, fill: dict[str, str]) -> None:
    for student, source in HONEST.items():
        shutil.copytree(SAMPLE / source / LESSON, folder / student / LESSON)
    for student, (base, replace, insert, remove) in HOSTILE.items():
        (folder / student / LESSON).mkdir(parents=True)
        nbformat.write(build(base, replace, insert, remove, fill), folder / student / LESSON / f"{LESSON}.ipynb")
    for student, content in UNREADABLE.items():
        (folder / student / LESSON).mkdir(parents=True)
        (folder / student / LESSON / f"{LESSON}.ipynb").write_bytes(content)
    (folder / "fifo-notebook" / LESSON).mkdir(parents=True)
    os.mkfifo(folder / "fifo-notebook" / LESSON / f"{LESSON}.ipynb")
    (folder / "link-notebook" / LESSON).mkdir(parents=True)
    (folder / "link-notebook" / LESSON / f"{LESSON}.ipynb").symlink_to(fill["victim"])
    huge = folder / "huge-notebook" / LESSON
    huge.mkdir(parents=True)
    with open(huge / f"{LESSON}.ipynb", "wb") as handle:
        handle.truncate(21 * 2**20)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    listener = socket.create_server(("127.0.0.1", 0))  # a host service the sandbox must not reach
    victim = tmp / "victim.txt"  # a host file every attack aims at
    victim.write_text("untouched")
    victim.chmod(0o644)
    out = tmp / "out"
    fill = {"victim": str(victim), "gradebook": str(out / "nbgrader" / "gradebook.db"),
            "host_port": str(listener.getsockname()[1])}
    write_class(tmp / "class", fill)
    watched = {path: path.read_bytes() for path in (MASTER, REPO / "README.md")}
    devnull = os.stat("/dev/null")
    result = subprocess.run([sys.executable, "-m", "compatlab", "grade", str(tmp / "class"), "--out", str(out),
                             "--workers", "2", "--cell-timeout", "10", "--notebook-timeout", "90"],
                            capture_output=True, text=True, timeout=1500, cwd=REPO,
                            env={**os.environ, "COMPATLAB_HOSTILE_SECRET": SECRET, "OPENAI_API_KEY": SECRET + "-key"})
    listener.close()
    assert (out / "grades.csv").exists(), result.stdout[-3000:] + result.stderr[-3000:]
    with open(out / "grades.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return {"result": result, "rows": rows, "out": out, "victim": victim, "watched": watched, "devnull": devnull,
            "reports": {student: reports(out, student) for student in HOSTILE}}


def graded_notebook(out: Path, student: str):
    return nbformat.read(out / "nbgrader" / "autograded" / student / LESSON / f"{LESSON}.ipynb", as_version=4)


def reports(out: Path, student: str) -> dict:
    path = out / "nbgrader" / "autograded" / student / LESSON / f"{LESSON}.ipynb"
    found = {}
    if path.is_file():
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                for line in output.get("text", "").splitlines() if output.get("output_type") == "stream" else []:
                    if line.startswith("HOSTILE "):
                        found.update(json.loads(line[len("HOSTILE "):]))
    return found


def score(graded, student) -> float:
    return float(graded["rows"][student]["score"])


def cell(graded, student, name) -> float:
    return float(graded["rows"][student][f"{LESSON}/{name}"])


def errors(graded, student) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for c in graded_notebook(graded["out"], student).cells
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


# ---------------------------------------------------------------- the class as a whole


def test_the_class_is_graded_and_honest_students_keep_their_exact_scores(graded):
    rows = graded["rows"]
    assert score(graded, "honest") == 15 and score(graded, "honest-wrong") == 13
    assert not rows["honest"]["review"] and not rows["honest-wrong"]["review"]
    assert all(rows[student]["status"] == "graded" for student in HOSTILE), \
        {s: rows[s]["status"] for s in HOSTILE if rows[s]["status"] != "graded"}


def test_nothing_is_lost_from_the_gradebook(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['out'] / 'nbgrader' / 'gradebook.db'}") as gradebook:
        stored = {s.student.id: s.score for s in gradebook.assignment_submissions(LESSON)}
    assert set(stored) == set(HOSTILE) | set(HONEST)
    assert all(stored[student] == score(graded, student) for student in stored)


# ---------------------------------------------------------------- the host, through root


def test_links_fifos_and_sockets_planted_for_root_reach_nothing(graded):
    found = graded["reports"]["plants-links"]
    for key in ("victim_write", "victim_chmod", "gradebook", "devnull_chmod"):
        assert found[key].startswith("failed:"), (key, found[key])
    assert found["writable"] == ["/tmp"], found["writable"]  # the sandbox's own tmpfs, nothing of the host
    victim = graded["victim"]
    assert victim.read_text() == "untouched" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    devnull = os.stat("/dev/null")
    assert stat.S_ISCHR(devnull.st_mode) and devnull.st_mode == graded["devnull"].st_mode
    assert all(path.read_bytes() == content for path, content in graded["watched"].items())
    assert score(graded, "plants-links") == 15


def test_squatted_sockets_and_ports_stay_in_their_own_sandbox(graded):
    found = graded["reports"]["aa-squats-sockets"]
    assert found["sockets"] > 0 and found["ports"] > 0  # it did squat, in its own sandbox
    # graded first on its worker, and every student after it was graded as usual
    assert score(graded, "aa-squats-sockets") == 15 and score(graded, "honest") == 15


def test_unreadable_submissions_get_a_status_and_the_rest_is_graded(graded):
    result, rows = graded["result"], graded["rows"]
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    expected = {"bad-utf8": "is not UTF-8 text", "nbformat-99": "(nbformat 99; expected 4)",
                "odd-metadata": "nbgrader metadata is not an object",
                "deep-nesting": "nests too deeply", "fifo-notebook": "is a FIFO, not a file",
                "link-notebook": "is a symbolic link", "huge-notebook": "over the 20 MB limit"}
    for student, status in expected.items():
        assert status in rows[student]["status"] and rows[student]["score"] == "", (student, rows[student]["status"])
    assert f"{len(expected) + 1} of {len(rows)} submissions could not be graded" in result.stdout
    # a folder that is no usable student id has no lesson ("-"): no table or report section of its own
    assert sorted(path.name for path in graded["out"].glob("grades*.csv")) == ["grades-tolerant-client.csv", "grades.csv"]
    assert re.findall(r'<section id="([^"]+)"', (graded["out"] / "report.html").read_text()) == [f"lesson-{LESSON}"]


# ---------------------------------------------------------------- forged scores


@pytest.mark.parametrize("student", [s for s in HOSTILE if s.startswith("forge-")])
def test_a_forged_score_is_zero_and_flagged(graded, student):
    assert score(graded, student) == 0, {name: graded["rows"][student][name] for name in TESTS}
    assert graded["rows"][student]["review"], "the integrity scan or the guard should flag it"


def test_the_guard_and_the_strict_checks_say_what_they_saw(graded):
    rows = graded["rows"]
    assert any("no report" in e for e in errors(graded, "forge-silences-guard"))
    assert "sys.modules['json']" in rows["forge-patches-modules"]["review"]
    assert "the input transformer's line_transforms" in rows["forge-line-transforms"]["review"]
    assert "Usage.__eq__" in rows["forge-patches-classes"]["review"]
    assert "decides equality itself" in rows["forge-equals-everything"]["review"]
    assert any("class Anything with ==, and that class decides equality itself" in e
               for e in errors(graded, "forge-equals-everything"))
    assert "test_chat: this test cell was deleted; nbgrader put it back" in rows["forge-deletes-tests"]["review"]
    assert "decides equality itself" in rows["forge-mock-any"]["review"]
    assert "sets __module__ in a class" in rows["forge-disguised-class"]["review"]
    assert "the kernel answered this cell twice" in rows["forge-sends-replies"]["review"]
    assert "the scan could not read this cell: it nests too deeply" in rows["forge-too-deep-to-scan"]["review"]


# ---------------------------------------------------------------- leaks


def feedback(graded, student) -> str:
    return html.unescape((graded["out"] / "feedback" / student / LESSON / f"{LESSON}.html").read_text())


def test_feedback_shows_no_line_of_any_test_and_no_environment_value(graded):
    test_lines = set()
    for name in TESTS:
        source = MASTER.read_text().split(f'"grade_id": "{name}"')[1].split("\n# %%")[0]
        body = "\n".join(source.splitlines()[1:])
        test_lines |= {line.strip() for text in (body, strict.rewrite(body)) for line in text.splitlines()
                       if len(line.strip()) >= 12 and "###" not in line}
    # the report's section of the lesson quotes each test's most common failure (its review list is
    # for the instructor and may quote a learner's code)
    report = html.unescape((graded["out"] / "report.html").read_text())
    section = report.split(f'<section id="lesson-{LESSON}">')[1].split("</section>")[0]
    for student, page in [*((s, feedback(graded, s)) for s in [*HOSTILE, *HONEST]), ("report.html", section)]:
        leaked = [line for line in test_lines if line in page or re.sub(r"\s+", " ", line) in re.sub(r"\s+", " ", page)]
        assert not leaked, (student, leaked[:3])
        assert SECRET not in page and "COMPATLAB_HOSTILE_SECRET" not in page
    page = feedback(graded, "leaks-tests-and-env")
    assert "[test code hidden]" in page
    messages = re.findall(r"<td>(ValueError: x+ …)</td>", page)
    assert messages and all(len(m) <= 610 for m in messages)


def test_the_kernel_sees_only_the_allowed_environment(graded):
    env = set(graded["reports"]["leaks-tests-and-env"]["env"])
    assert "COMPATLAB_HOSTILE_SECRET" not in env
    allowed = {"OLLAMA_HOST", "OPENAI_BASE_URL", "OPENAI_API_KEY", "COMPATLAB_ENGINES", "NBGRADER_EXECUTION",
               "COMPATLAB_RELAY", "COMPATLAB_GUARD", "PATH", "LANG", "LC_ALL", "HOME", "TMPDIR",
               "PYTHONDONTWRITEBYTECODE", "JUPYTER_PLATFORM_DIRS", "SSL_CERT_DIR"}
    # what ipykernel and jupyter_client set for every kernel themselves
    extra = {name for name in env - allowed if not name.startswith(("JPY_", "PYDEVD_"))}
    assert extra <= {"MPLBACKEND", "CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR", "PAGER", "GIT_PAGER", "TERM", "PWD"}, extra


# ---------------------------------------------------------------- limits


def test_a_kernel_that_ignores_interrupts_is_stopped(graded):
    assert cell(graded, "ignores-sigint", "test_content_text") == 2 and cell(graded, "ignores-sigint", "test_tool_arguments") == 2
    assert score(graded, "ignores-sigint") == 4
    assert any("ignored the interrupt, so the kernel was stopped" in e for e in errors(graded, "ignores-sigint"))


def test_a_notebook_has_a_time_limit_of_its_own(graded):
    assert score(graded, "runs-out-the-clock") == 0
    assert any("the notebook reached its time limit of 90 s" in e for e in errors(graded, "runs-out-the-clock"))


def test_memory_is_capped_for_the_whole_sandbox_not_per_process(graded):
    found = graded["reports"]["memory-children"]
    # five children of 1.2 GB each, each under the 4 GB per-process cap: together they are not,
    # and the kernel's out-of-memory killer ends the ones past the sandbox's 4 GB
    assert found["children_alive"] <= 3 and found["children_killed"] >= 2, found
    assert score(graded, "memory-children") == 15


def test_disk_is_capped_and_nothing_lands_on_the_host(graded):
    written = graded["reports"]["fills-the-disk"]["written"]
    assert written and all(megabytes < 600 and "all of it" not in outcome for megabytes, outcome in written.values()), written
    assert score(graded, "fills-the-disk") == 15
    assert sum(f.stat().st_size for f in graded["out"].rglob("*") if f.is_file()) < 150 * 2**20


def test_hoarding_connections_to_the_engines_stops_at_the_sandboxs_limits(graded):
    found = graded["reports"]["hoards-engine-connections"]
    assert found["files"] == [1024, 1024] and found["raise_limit"].startswith("failed: ValueError")
    assert found["held"] <= 1024, found  # the kernel runs out of its own descriptors first
    # the grader's relay (one per worker, 256 connections at most) never ran out of its own
    # (asyncio's words when accept() fails for want of descriptors; the kernel's own running
    # out is in the log too, under its sandbox, and harms only itself)
    assert "out of system resource" not in (graded["out"] / "nbgrader" / "grading.log").read_text()
    assert score(graded, "hoards-engine-connections") == 15 and score(graded, "honest") == 15


def test_output_is_capped_per_notebook_display_updates_and_widgets_included(graded):
    for student in ("floods-displays", "floods-output", "forge-floods-then-fails"):
        path = graded["out"] / "nbgrader" / "autograded" / student / LESSON / f"{LESSON}.ipynb"
        assert path.stat().st_size < 12 * 2**20, student
    assert score(graded, "floods-displays") == 15 and score(graded, "floods-output") == 15


def test_the_attacks_the_suite_always_had(graded):
    reports = graded["reports"]
    assert cell(graded, "infinite-loop", "test_read_usage") == 0 and cell(graded, "infinite-loop", "test_sse_payloads") == 3
    assert reports["fork-bomb"] == {"fork_bomb": "started"}
    assert cell(graded, "fork-bomb", "test_read_usage") == 0 and cell(graded, "fork-bomb", "test_sse_payloads") == 3
    assert reports["memory-bomb"]["memory"].startswith("failed: MemoryError")
    assert cell(graded, "memory-bomb", "test_content_text") == 0 and cell(graded, "memory-bomb", "test_read_usage") == 2
    found = reports["reads-solutions"]
    assert found["solutions"].startswith("failed:") and found["gradebook"].startswith("failed:")
    assert "solutions" not in found["listing"] and "README.md" not in found["listing"], found["listing"]
    assert cell(graded, "reads-solutions", "test_content_text") == 2  # it still answers, and gains nothing
    assert cell(graded, "edits-locked-tests", "test_content_text") == 0
    assert score(graded, "monkeypatches") <= 11
    assert cell(graded, "monkeypatches", "test_content_text") == 0 and cell(graded, "monkeypatches", "test_chat") == 0
    found = reports["kills-the-engine"]
    # it sees only its own sandbox's processes (bwrap's init and the runner), can signal neither,
    # and `pkill -f compatlab` ends only its own kernel: the two tests before that cell count
    assert found["seen"] <= 3 and all(attempt.startswith("failed: PermissionError") for attempt in found["killed"])
    assert score(graded, "kills-the-engine") == 4 and score(graded, "honest") == 15
    for key in ("internet", "dns", "host_port"):
        assert reports["calls-out"][key].startswith("failed:"), (key, reports["calls-out"][key])
    assert score(graded, "calls-out") == 15
    found = reports["writes-outside"]
    for key in ("repo", "source", "gradebook", "outside"):
        assert found[key].startswith("failed:"), (key, found[key])
    assert found["own_folder"].startswith("done:")
    assert not (REPO / "solutions" / "pwned.txt").exists() and not (REPO / "src" / "compatlab" / "pwned.py").exists()


# ---------------------------------------------------------------- the console


def test_the_console_shows_names_and_messages_without_escapes_or_markup(graded):
    printed = graded["result"].stdout + graded["result"].stderr
    assert "\x1b" not in printed
    assert "[bold" in printed  # shown literally (rich would have consumed it as markup)
    assert "need review" in printed
