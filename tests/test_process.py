"""The process layer is free of the engine: starting or finding a lab engine, and a lesson's setup
cell, never load FastAPI, uvicorn, Starlette or the engine's own modules. Each check runs in a
fresh interpreter, since this test process has long since imported all of them."""

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from compatlab.backends import ENGINES_VARIABLE, LESSON_ENGINES, LESSON_PROFILES
from compatlab.grader.course import Course
from compatlab.grader.release import reference_code

COURSE = Course()
ENGINE_PACKAGES = ("fastapi", "uvicorn", "starlette", "compatlab.engine")

# Run in the child: what it loaded of the engine's packages, which lab engines it started itself,
# and the profile each engine the cell found reports (/lab/status: every profile has it).
REPORT = f"""
import json, sys
import httpx
from compatlab import backends
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {ENGINE_PACKAGES[:3]!r} or m.startswith("compatlab.engine"))
engines = globals().get("ENGINES", {{}})
print(json.dumps({{"loaded": loaded, "started": sorted(backends._started),
                  "profiles": {{name: httpx.get(url + "/lab/status", timeout=5).json()["profile"]
                               for name, url in engines.items()}}}}))
"""


def run_fresh(code: str, env: dict[str, str], cwd) -> dict:
    done = subprocess.run([sys.executable, "-c", code + REPORT], capture_output=True, text=True, timeout=120,
                          env={**env, "MPLBACKEND": "Agg"}, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def without_shared_engines() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name != ENGINES_VARIABLE}


def test_importing_the_process_layer_loads_no_engine(tmp_path):
    report = run_fresh("import compatlab.backends, compatlab.lessonkit, compatlab.process", without_shared_engines(),
                       tmp_path)
    assert report["loaded"] == []


def test_a_setup_cell_that_starts_its_engines_loads_none_of_them(tmp_path):
    setup = reference_code(COURSE, "first-contact", ())
    assert "lab_engines(" in setup
    report = run_fresh(setup, without_shared_engines(), tmp_path)
    assert report["started"] == ["ollama", "paced"]  # this kernel started them: nothing was shared
    assert report["profiles"] == {"ollama": "ollama", "paced": "ollama"}
    assert report["loaded"] == []


@pytest.fixture(scope="module")
def shared(engines) -> dict[str, str]:
    """COMPATLAB_ENGINES as `compatlab grade` sets it ("paced" here unpaced: only imports are checked)."""
    urls = {name: engines.get(*LESSON_ENGINES[name]).url for name in LESSON_PROFILES}
    return {ENGINES_VARIABLE: json.dumps({**urls, "paced": urls["ollama"]})}


@pytest.mark.parametrize("lesson", COURSE.assignments())
def test_every_setup_cell_finds_shared_engines_without_loading_them(lesson, shared, tmp_path):
    setup = reference_code(COURSE, lesson, ())
    report = run_fresh(setup, {**os.environ, **shared}, tmp_path)
    assert report["started"] == []  # all found in COMPATLAB_ENGINES
    assert report["profiles"] and all(report["profiles"][name] == name for name in report["profiles"] if name != "paced")
    # what the cell itself uses: FastAPI (and so Starlette) where it teaches it, uvicorn where it
    # serves an app (serve_app); the engine's own modules, never
    own = []
    if "from fastapi" in setup:
        own += ["fastapi", "starlette"]
    if "serve_app(" in setup:
        own.append("uvicorn")
    assert [name for name in report["loaded"] if name.split(".")[0] not in own] == []


def engine_pids(group_pid: int) -> list[int]:
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _parent(pid) == group_pid]


def _parent(pid: str) -> int:
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_an_engine_group_serves_each_engine_with_its_own_settings_and_dies_with_its_parent():
    """One process imports the engine and forks one child per engine (what lab_engines starts)."""
    from compatlab.process import FAST, EngineGroup

    group = EngineGroup({"fast-vllm": ["--profile", "vllm", *FAST], "paced": list(LESSON_ENGINES["paced"])})
    group.launch().wait_ready()
    try:
        assert sorted(group.urls) == ["fast-vllm", "paced"] and len(set(group.urls.values())) == 2
        settings = {name: httpx.get(url + "/lab/status", timeout=5).json()["settings"] for name, url in group.urls.items()}
        assert (settings["fast-vllm"]["profile"], settings["fast-vllm"]["tokens_per_second"]) == ("vllm", 0)
        assert (settings["paced"]["profile"], settings["paced"]["tokens_per_second"]) == ("ollama", 60)
        children = engine_pids(group.process.pid)
        assert len(children) == 2
        group.process.kill()  # no chance to pass anything on: the children's parent-death signal ends them
        group.process.wait(5)
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") and _parent(str(pid)) != 0 for pid in children) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        for url in group.urls.values():
            with pytest.raises(httpx.ConnectError):
                httpx.get(url + "/lab/status", timeout=2)
    finally:
        group.stop()


def test_an_engine_group_refuses_what_engine_serve_would_not_run():
    for engines, says in (("[1, 2]", "must be a JSON object"), ('{"a": ["--backend", "llama"]}', "a lab engine"),
                          ('{"a b": []}', "without spaces"), ('{"a": ["--fault", "nope"]}', "known fault")):
        done = subprocess.run([sys.executable, "-m", "compatlab", "engine", "group", engines],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_groups_ready_lines_are_all_read_when_they_come_in_one_piece():
    """The engines of a group can announce themselves within one read of the pipe."""
    from compatlab.process import READY, EngineGroup

    group = EngineGroup({"a": [], "b": []})
    lines = f"{READY}http://127.0.0.1:1 a\n{READY}http://127.0.0.1:2 b\n"
    group._command = [sys.executable, "-c", f"import sys, time; sys.stdout.write({lines!r}); sys.stdout.flush(); "
                                            "time.sleep(30)"]
    group.process = subprocess.Popen(group._command, stdout=subprocess.PIPE)
    try:
        started = time.monotonic()
        assert group.wait_ready(10).urls == {"a": "http://127.0.0.1:1", "b": "http://127.0.0.1:2"}
        assert time.monotonic() - started < 5
    finally:
        group.stop()
