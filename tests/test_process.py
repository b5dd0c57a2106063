"""The process layer is free of the engine: starting or finding a lab engine, and a lesson's setup
cell, never load FastAPI, uvicorn, Starlette or the engine's own modules. Each check runs in a
fresh interpreter, since this test process has long since imported all of them."""

import json
import os
import subprocess
import sys

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
