"""Hostile submissions: `compatlab grade` contains each one and scores it as it deserves.

A class of tolerant-client notebooks, each the reference solution with one or two cells
rewritten to attack the grader, graded once (sandboxed, two workers, a 10-second cell limit)
beside two honest students whose scores are known. Each hostile student writes what it
managed to do to hostile-report.json in its own grading folder, which the tests read back.
"""

import csv
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from compatlab.grader.course import REPO

LESSON = "tolerant-client"
SAMPLE = REPO / "data" / "sample-class" / "submitted"
REFERENCE = SAMPLE / "reference-solution" / LESSON / f"{LESSON}.ipynb"
MASTER = REPO / "solutions" / LESSON / f"{LESSON}.py"

REPORT = '''
import json, pathlib
def report(**found):
    path = pathlib.Path("hostile-report.json")
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, **found}))
def attempt(action):
    try:
        return f"done: {action()!r}"[:200]
    except BaseException as exc:
        return f"failed: {type(exc).__name__}: {exc}"[:200]
'''

# grade_id -> new source, per hostile student; {outside} is a file outside the class's reach
HOSTILE = {
    "infinite-loop": {"read_usage": "while True:\n    pass"},
    "fork-bomb": {"read_usage": REPORT + '''
import os, time
report(fork_bomb="started")
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.05)'''},
    "memory-bomb": {"content_text": REPORT + '''
report(memory=attempt(lambda: len(bytearray(64 * 2**30))))
hog = []
while True:
    hog.append(bytearray(256 * 2**20))'''},
    "reads-solutions": {"content_text": REPORT + '''
import compatlab
repo = pathlib.Path(compatlab.__file__).resolve().parents[2]
here = pathlib.Path.cwd()
report(solutions=attempt(lambda: (repo / "solutions" / "tolerant-client" / "tolerant-client.py").read_text()[:50]),
       listing=attempt(lambda: sorted(p.name for p in repo.iterdir())),
       gradebook=attempt(lambda: (here.parents[2] / "gradebook.db").read_bytes()[:16]),
       others=attempt(lambda: sorted(p.name for p in here.parents[1].iterdir())))
master = (repo / "solutions" / "tolerant-client" / "tolerant-client.py").read_text()
exec("def content_text" + master.split("def content_text")[1].split(chr(10) * 3)[0])  # the answer, copied'''},
    "edits-locked-tests": {"content_text": "def content_text(content):\n    return str(content)",
                           "test_content_text": "pass  # no test here"},
    "monkeypatches": {"content_text": '''import builtins, re
def content_text(content):
    builtins.isinstance = lambda *args, **kwargs: True  # every later check passes ...
    return "" if content is None else str(content)
ip = get_ipython()
ip.showtraceback = lambda *args, **kwargs: None  # ... and no test failure shows
ip.input_transformers_post.append(  # ... and later cells lose their asserts
    lambda lines: [re.sub(r"^(\\s*)assert .*$", r"\\1pass", line) for line in lines])'''},
    "kills-the-engine": {"read_usage": REPORT + '''
import os, signal, subprocess, httpx
victims = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
report(seen=len(victims), killed=[attempt(lambda p=p: os.kill(p, signal.SIGKILL)) for p in victims])
report(pkill=attempt(lambda: subprocess.run(["pkill", "-9", "-f", "compatlab"]).returncode))  # itself too
''' + "\n".join(line for line in MASTER.read_text().split('"grade_id": "read_usage"')[1].split("\n# %%")[0]
                .splitlines()[1:] if "###" not in line)},
    "calls-out": {"read_usage": REPORT + '''
import socket, httpx
report(internet=attempt(lambda: httpx.get("https://pypi.org/simple/", timeout=3).status_code),
       dns=attempt(lambda: socket.gethostbyname("pypi.org")),
       host_port=attempt(lambda: socket.create_connection(("127.0.0.1", {host_port}), timeout=3).close()))
''' + "\n".join(line for line in MASTER.read_text().split('"grade_id": "read_usage"')[1].split("\n# %%")[0]
                .splitlines()[1:] if "###" not in line)},
    # the answer first, then 6 MB of output: on a slow, loaded machine the flood may outlast the
    # cell's time limit, and the answer must be defined either way
    "floods-output": {"content_text": "\n".join(line for line in MASTER.read_text().split('"grade_id": "content_text"')[1]
                                                .split("\n# %%")[0].splitlines()[1:] if "###" not in line) + '''
for i in range(10_000):
    print("flood " * 100)
'''},
    "writes-outside": {"content_text": REPORT + '''
import compatlab
repo = pathlib.Path(compatlab.__file__).resolve().parents[2]
here = pathlib.Path.cwd()
report(repo=attempt(lambda: (repo / "solutions" / "pwned.txt").write_text("x")),
       source=attempt(lambda: (repo / "src" / "compatlab" / "pwned.py").write_text("x")),
       gradebook=attempt(lambda: (here.parents[2] / "gradebook.db").write_bytes(b"x")),
       neighbour=attempt(lambda: (here.parents[1] / "honest" / "tolerant-client" / "tolerant-client.ipynb").write_text("{}")),
       outside=attempt(lambda: pathlib.Path("{outside}").write_text("x")),
       own_folder=attempt(lambda: (here / "notes.txt").write_text("mine")))
''' + "\n".join(line for line in MASTER.read_text().split('"grade_id": "content_text"')[1].split("\n# %%")[0]
                .splitlines()[1:] if "###" not in line)},
}
HONEST = {"honest": "reference-solution", "honest-wrong": "names-concatenated"}


def write_class(folder: Path, host_port: int, outside: Path) -> None:
    for student, source in HONEST.items():
        shutil.copytree(SAMPLE / source / LESSON, folder / student / LESSON)
    for student, cells in HOSTILE.items():
        notebook = nbformat.read(REFERENCE, as_version=4)
        by_id = {cell.id: cell for cell in notebook.cells}
        for cell_id, source in cells.items():
            by_id[cell_id].source = source.replace("{host_port}", str(host_port)).replace("{outside}", str(outside))
        (folder / student / LESSON).mkdir(parents=True)
        nbformat.write(notebook, folder / student / LESSON / f"{LESSON}.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    listener = socket.create_server(("127.0.0.1", 0))  # a host service the sandbox must not reach
    outside = tmp / "outside.txt"
    write_class(tmp / "class", listener.getsockname()[1], outside)
    before = {path: path.read_bytes() for path in (MASTER, REPO / "README.md")}
    result = subprocess.run([sys.executable, "-m", "compatlab", "grade", str(tmp / "class"), "--out", str(tmp / "out"),
                             "--workers", "2", "--cell-timeout", "10"], capture_output=True, text=True, timeout=900,
                            cwd=REPO)
    listener.close()
    with open(tmp / "out" / "grades.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    reports = {}
    for student in HOSTILE:
        path = tmp / "out" / "nbgrader" / "autograded" / student / LESSON / "hostile-report.json"
        reports[student] = json.loads(path.read_text()) if path.is_file() else {}
    return {"result": result, "rows": rows, "reports": reports, "out": tmp / "out", "outside": outside,
            "before": before}


def score(graded, student) -> float:
    return float(graded["rows"][student]["score"])


def cell(graded, student, name) -> float:
    return float(graded["rows"][student][name])


def test_the_class_is_graded_and_honest_students_keep_their_scores(graded):
    assert graded["result"].returncode == 0, graded["result"].stdout + graded["result"].stderr
    assert {row["status"] for row in graded["rows"].values()} == {"graded"}
    assert score(graded, "honest") == 15 and score(graded, "honest-wrong") == 13


def test_nothing_is_lost_from_the_gradebook(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['out'] / 'nbgrader' / 'gradebook.db'}") as gradebook:
        stored = {s.student.id: s.score for s in gradebook.assignment_submissions(LESSON)}
    assert set(stored) == set(HOSTILE) | set(HONEST)
    assert all(stored[student] == score(graded, student) for student in stored)


def test_an_infinite_loop_costs_its_cell_not_the_class(graded):
    assert cell(graded, "infinite-loop", "test_read_usage") == 0
    assert cell(graded, "infinite-loop", "test_sse_payloads") == 3  # the cells after it still ran


def test_a_fork_bomb_hits_the_process_cap(graded):
    assert graded["reports"]["fork-bomb"] == {"fork_bomb": "started"}
    assert cell(graded, "fork-bomb", "test_read_usage") == 0
    assert cell(graded, "fork-bomb", "test_sse_payloads") == 3


def test_a_memory_bomb_hits_the_memory_cap(graded):
    assert graded["reports"]["memory-bomb"]["memory"].startswith("failed: MemoryError")
    assert cell(graded, "memory-bomb", "test_content_text") == 0
    assert cell(graded, "memory-bomb", "test_read_usage") == 2


def test_solutions_gradebook_and_other_students_are_out_of_sight(graded):
    found = graded["reports"]["reads-solutions"]
    for key in ("solutions", "gradebook"):
        assert found[key].startswith("failed:"), (key, found[key])
    assert found["others"] == "done: ['reads-solutions']", found["others"]  # its own folder, no one else's
    assert "solutions" not in found["listing"] and "README.md" not in found["listing"], found["listing"]
    assert cell(graded, "reads-solutions", "test_content_text") == 0


def test_editing_a_locked_test_cell_changes_nothing(graded):
    assert cell(graded, "edits-locked-tests", "test_content_text") == 0


def test_monkeypatching_builtins_tracebacks_and_asserts_earns_nothing(graded):
    # the same wrong content_text as the honest content-parts-as-str (11 points): no more than that
    assert score(graded, "monkeypatches") <= 11
    assert cell(graded, "monkeypatches", "test_content_text") == 0 and cell(graded, "monkeypatches", "test_chat") == 0


def test_killing_the_engine_kills_only_its_own_sandbox(graded):
    found = graded["reports"]["kills-the-engine"]
    assert found["seen"] < 20, "the sandbox should see only its own processes"
    assert score(graded, "honest") == 15  # the shared engines kept answering everyone else


def test_the_network_is_closed_except_the_engines(graded):
    found = graded["reports"]["calls-out"]
    for key in ("internet", "dns", "host_port"):
        assert found[key].startswith("failed:"), (key, found[key])
    assert score(graded, "calls-out") == 15  # the lab engines are reachable: the tests pass


def test_a_flood_of_output_is_capped(graded):
    notebook = graded["out"] / "nbgrader" / "autograded" / "floods-output" / LESSON / f"{LESSON}.ipynb"
    assert notebook.stat().st_size < 2**20  # 6 MB were printed
    assert score(graded, "floods-output") == 15


def test_writing_outside_its_folder_fails(graded):
    found = graded["reports"]["writes-outside"]
    for key in ("repo", "source", "gradebook", "neighbour", "outside"):
        assert found[key].startswith("failed:"), (key, found[key])
    assert found["own_folder"].startswith("done:")
    assert not graded["outside"].exists()
    assert not (REPO / "solutions" / "pwned.txt").exists() and not (REPO / "src" / "compatlab" / "pwned.py").exists()
    assert all(path.read_bytes() == content for path, content in graded["before"].items())
    assert score(graded, "writes-outside") == 15
