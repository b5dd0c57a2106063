"""Warm kernels (warm.py) keep students apart: one student leaves every kind of state behind it
can (its paced lab engine busy with a stream included), and the next student graded by the
same worker, whose kernel comes from the same pre-imported template, finds none of it."""

import json
import os
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from compatlab.grader.course import REPO
from compatlab.grader.grade import grade_class

LESSON = "first-contact"
REFERENCE = REPO / "data" / "sample-class" / "submitted" / "reference-solution" / LESSON / f"{LESSON}.ipynb"

LEAVER = r'''
import builtins, ctypes, json, os, socket, subprocess, sys, time
import pandas
pandas.LEFT_BY_A = "A"                       # a module the template pre-imported
pandas.DataFrame.left_by_a = "A"             # one of its classes
json.LEFT_BY_A = "A"                         # the standard library
builtins.LEFT_BY_A = "A"                     # builtins
sys.path.insert(0, "/tmp/left-by-a")
os.environ["LEFT_BY_A"] = "A"
for path in ("/tmp/left-by-a.txt", os.path.expanduser("~/left-by-a.txt")):
    with open(path, "w") as handle:
        handle.write("A")
subprocess.Popen(["sleep", "600.4242"], start_new_session=True)      # a process that outlives its cell
libc = ctypes.CDLL(None, use_errno=True)
if os.fork() == 0:                                                   # and a forked one, named
    libc.prctl(15, b"left-by-a", 0, 0, 0)                            # PR_SET_NAME
    time.sleep(600)
    os._exit(0)
listener = socket.socket(socket.AF_UNIX)
listener.bind("\0compatlab-left-by-a")                                # an abstract socket
listener.listen()
tcp = socket.create_server(("127.0.0.1", 45678))                     # a port on the loopback
shm = libc.shmget(0x0C0FFEE, 4096, 0o1666)                           # System V shared memory (IPC_CREAT)
import threading, httpx
from compatlab.backends import lab_engines
paced = lab_engines(("paced",))["paced"]                             # this sandbox's own paced engine
def hold():                                                          # a stream it leaves open
    with httpx.stream("POST", paced + "/api/chat", timeout=None, json={"model": "lab:latest", "stream": True,
                      "messages": [{"role": "user", "content": "Write 2000 words"}]}) as reply:
        for _ in reply.iter_lines():
            time.sleep(1)
threading.Thread(target=hold, daemon=True).start()
time.sleep(0.5)
markers = [pid for pid in os.listdir("/proc") if pid.isdigit()
           and (b"left-by-a" in open(f"/proc/{pid}/comm", "rb").read() or b"600.4242" in open(f"/proc/{pid}/cmdline", "rb").read())]
status = httpx.get(paced + "/lab/status").json()
print("LEFT", shm >= 0, len(markers), time.time(), status["active_streams"], ",".join(status["loaded"]), paced)
'''

LOOKER = r'''
import sys
preloaded = "pandas" in sys.modules                                  # before this notebook imports it
import builtins, ctypes, json, os, socket, time
import pandas

def reach(family, address):
    try:
        with socket.socket(family) as probe:
            probe.settimeout(2)
            probe.connect(address)
        return True
    except OSError:
        return False

libc = ctypes.CDLL(None, use_errno=True)
seen = {"preloaded": preloaded,
        "module": hasattr(pandas, "LEFT_BY_A"), "class": hasattr(pandas.DataFrame, "left_by_a"),
        "stdlib": hasattr(json, "LEFT_BY_A"), "builtins": hasattr(builtins, "LEFT_BY_A"),
        "sys_path": "/tmp/left-by-a" in sys.path, "environ": "LEFT_BY_A" in os.environ,
        "files": [p for p in ("/tmp/left-by-a.txt", os.path.expanduser("~/left-by-a.txt")) if os.path.exists(p)],
        "processes": [open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace") for pid in os.listdir("/proc")
                      if pid.isdigit() and b"sleep" in open(f"/proc/{pid}/cmdline", "rb").read()],
        "abstract_socket": reach(socket.AF_UNIX, "\0compatlab-left-by-a"),
        "tcp": reach(socket.AF_INET, ("127.0.0.1", 45678)),
        "shm": libc.shmget(0x0C0FFEE, 0, 0) >= 0,
        "time": time.time()}
import httpx
from compatlab.backends import lab_engines
seen["paced_url"] = lab_engines(("paced",))["paced"]
status = httpx.get(seen["paced_url"] + "/lab/status").json()
seen["paced"] = {"active_streams": status["active_streams"], "loaded": status["loaded"]}
print("SEEN " + json.dumps(seen))
'''


def submission(folder, student: str, code: str) -> None:
    notebook = nbformat.read(REFERENCE, as_version=4)
    notebook.cells.insert(0, new_code_cell(code))  # a learner's own cell, before the lesson's first
    target = folder / student / LESSON
    target.mkdir(parents=True)
    nbformat.write(notebook, target / f"{LESSON}.ipynb")


def printed(out, student: str, marker: str) -> str:
    notebook = nbformat.read(out / "nbgrader" / "autograded" / student / LESSON / f"{LESSON}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for o in notebook.cells[0].outputs)
    lines = [line for line in text.splitlines() if line.startswith(marker)]
    assert lines, f"{student}'s first cell printed no {marker!r} line: {notebook.cells[0].outputs}"
    return lines[0][len(marker):].strip()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    assert os.geteuid() == 0, "warm kernels are root's (setns); CI grades as root"
    folder, out = tmp_path_factory.mktemp("class"), tmp_path_factory.mktemp("out")
    submission(folder, "a-leaves-state", LEAVER)
    submission(folder, "b-looks-for-it", LOOKER)
    # one worker: both students' kernels come from the same template, one after the other
    subs = {s.student: s for s in grade_class(folder, out, workers=1)}
    yield out, subs
    shutil.rmtree(out, ignore_errors=True)


def test_the_next_student_on_a_worker_finds_nothing_left(graded):
    out, subs = graded
    left = printed(out, "a-leaves-state", "LEFT").split()
    seen = json.loads(printed(out, "b-looks-for-it", "SEEN"))
    # what the leaver left was really there while it ran, or the test would prove nothing
    assert left[:2] == ["True", "2"], f"the leaver's shared memory and processes were not made: {left}"
    assert left[3:5] == ["1", "lab:latest"], f"the leaver's stream on its paced engine was not open: {left}"
    assert float(left[2]) < seen["time"], "the two students did not run one after the other"
    assert seen.pop("preloaded"), "the second kernel was not forked from the warm template"
    seen.pop("time")
    # the same address in each sandbox (its own loopback), and a fresh engine behind it
    assert seen.pop("paced_url") == left[5]
    assert seen == {"module": False, "class": False, "stdlib": False, "builtins": False, "sys_path": False,
                    "environ": False, "files": [], "processes": [], "abstract_socket": False, "tcp": False,
                    "shm": False, "paced": {"active_streams": 0, "loaded": []}}


def test_both_are_graded_as_the_reference_solution(graded):
    _, subs = graded
    for student in ("a-leaves-state", "b-looks-for-it"):
        assert subs[student].score == subs[student].max_score, (student, subs[student].problem)


def test_nothing_of_either_kernel_outlives_grading(graded):
    # the processes the leaver started went with its sandbox: none is left on the machine
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            name = open(f"/proc/{pid}/comm", "rb").read().strip()
            command = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if name == b"left-by-a" or b"600.4242" in command:
            left.append((pid, name, command))
    assert not left
