"""Live lab engines for the tests (real processes on free loopback ports, stopped at the end),
the sample class graded once for the whole run, and the files' order for `make test`'s workers."""

import fcntl
import json
import os
from collections import Counter

import httpx
import ollama
import openai
import pytest

from compatlab.process import EngineProcess

# `make test` runs two xdist workers, each given whole files in this order (--dist loadfile
# --no-loadscope-reorder): the longest first, so that no long one starts last.
LONGEST_FIRST = ["test_check.py", "test_classroom.py", "test_grading.py", "test_hostile.py", "test_cluster.py",
                 "test_browser.py", "test_real_tier.py"]


def pytest_collection_modifyitems(items):
    for item in items:  # schemathesis names each operation's test (pytest 9) but gives them one id
        if getattr(item, "operation_label", None) and item.nodeid != item.parent.id.child(item.name):
            item._id = item.parent.id.child(item.name)
    ids = Counter(item.nodeid for item in items)
    if repeated := [nodeid for nodeid, count in ids.items() if count > 1]:  # xdist would run one of each
        raise pytest.UsageError(f"tests share an id, so xdist would run only one of them: {repeated}")
    items.sort(key=lambda item: LONGEST_FIRST.index(item.path.name) if item.path.name in LONGEST_FIRST
               else len(LONGEST_FIRST))  # a stable sort: the other files keep their order


class Engines:
    """Starts each distinct engine configuration once per session."""

    def __init__(self) -> None:
        self._running: dict[tuple[str, ...], EngineProcess] = {}

    def get(self, *args: str, fast: bool = True) -> EngineProcess:
        key = (*args, f"fast={fast}")
        if key not in self._running:
            self._running[key] = EngineProcess(*args, fast=fast).start()
        return self._running[key]

    def fresh(self, *args: str, fast: bool = True) -> EngineProcess:
        """An engine of its own, for tests that change its state (load, unload, faults)."""
        engine = EngineProcess(*args, fast=fast).start()
        self._running[(*args, f"fresh={id(engine)}")] = engine
        return engine

    def stop_all(self) -> None:
        for engine in self._running.values():
            engine.stop()


@pytest.fixture(scope="session")
def engines():
    pool = Engines()
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def engine(engines) -> EngineProcess:
    """The default engine: profile `ollama`, no pacing."""
    return engines.get()


@pytest.fixture()
def ollama_client(engine) -> ollama.Client:
    return ollama.Client(host=engine.url)


@pytest.fixture()
def openai_client(engine) -> openai.OpenAI:
    # max_retries=0: the SDK retries 5xx by default, which would hide what the engine sent
    return openai.OpenAI(base_url=engine.v1_url, api_key="compatlab", max_retries=0)


@pytest.fixture()
def http(engine):
    with httpx.Client(base_url=engine.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def llama_front() -> EngineProcess:
    """The real tier: SmolLM2 on llama-server behind the Ollama-API front (`make real` installs it;
    `make test` depends on it, so a missing install fails here instead of skipping)."""
    from compatlab import llama

    assert llama.installed(), f"the real tier is missing: {llama.INSTALL_HINT}"
    front = EngineProcess("--backend", "llama").start(timeout=120)
    yield front
    front.stop()


@pytest.fixture(scope="session")
def llama_server_url(llama_front) -> str:
    """llama-server itself, the child the front started: the compat matrix's "llama.cpp" engine."""
    return httpx.get(llama_front.url + "/lab/status", timeout=5).json()["llama_server"]


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """The sample class, graded once by the real command: (the finished process, the --out
    folder, grades.csv rows keyed by (student, assignment)). Once for the whole run: under xdist
    the first worker to ask grades it and the others wait for it, in the run's shared folder."""
    import csv
    import subprocess
    import sys

    from compatlab.grader.course import REPO

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # each worker's own folder is in the run's
    out, saved = shared / "graded", shared / "graded.json"
    with open(shared / "graded.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not saved.is_file():
            done = subprocess.run([sys.executable, "-m", "compatlab", "grade", str(REPO / "data" / "sample-class" / "submitted"),
                                   "--out", str(out), "--workers", "2"], capture_output=True, text=True, timeout=900, cwd=REPO)
            saved.write_text(json.dumps([done.args, done.returncode, done.stdout, done.stderr]))
    result = subprocess.CompletedProcess(*json.loads(saved.read_text()))
    assert result.returncode == 0, result.stdout + result.stderr
    with open(out / "grades.csv", newline="") as handle:
        rows = {(row["student"], row["assignment"]): row for row in csv.DictReader(handle)}
    return result, out, rows
