"""The command line as a user runs it: serve, doctor, tour and lab, as real processes."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from compatlab.grader.course import Course
from compatlab.process import EngineProcess
from support import free_port

COURSE = Course()

COMPATLAB = [sys.executable, "-m", "compatlab"]


def _run(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*COMPATLAB, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_serve_on_a_busy_port_says_so():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = _run("engine", "serve", "--port", str(busy.getsockname()[1]))
    assert result.returncode == 1
    assert "cannot listen" in result.stderr and "Traceback" not in result.stderr


def test_serve_rejects_unknown_fault_and_profile():
    assert _run("engine", "serve", "--fault", "meltdown").returncode == 2
    assert _run("engine", "serve", "--profile", "tgi").returncode == 2


def test_serve_announces_and_stops_cleanly():
    engine = EngineProcess("--profile", "vllm").start()
    assert httpx.get(engine.url + "/version").json()["version"]
    engine.stop()
    assert engine.process.returncode in (0, -15)
    assert "Traceback" not in engine.stderr()


def test_doctor_finds_the_lab_engine_when_no_ollama():
    result = _run("doctor", env={"OLLAMA_HOST": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lab engine" in result.stdout and "chat with lab:latest" in result.stdout
    assert "llama-server (real tier)" in result.stdout and "chat: " in result.stdout  # `make test` installs it


def test_doctor_fails_with_a_fix_when_ollama_is_required_but_down():
    result = _run("doctor", "--backend", "ollama", env={"OLLAMA_HOST": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 1
    assert "ollama serve" in result.stdout and "OLLAMA_HOST" in result.stdout


def test_doctor_tells_a_lab_engine_at_ollama_host_apart(engine):
    result = _run("doctor", env={"OLLAMA_HOST": engine.url})
    assert result.returncode == 0 and "compatlab lab engine" in result.stdout


def test_tour_prints_its_table():
    result = _run("tour", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    for kind in ("stream", "tools", "structured output", "thinking", "embeddings", "fault"):
        assert kind in result.stdout
    assert "7 of 7 exchanges behaved as expected" in result.stdout
    assert "stopped cleanly" in result.stdout


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_lab_starts_jupyter_on_the_work_folder_with_an_engine_and_the_variables(tmp_path):
    port = free_port()  # --port is Jupyter's; --engine-port the lab engine's
    work = tmp_path / "work"
    lab = subprocess.Popen([*COMPATLAB, "lab", "--port", str(port), "--engine-port", "0", "--no-browser",
                            "--work", str(work), "--IdentityProvider.token=compatlab-test"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           env={**os.environ, "OLLAMA_HOST": f"127.0.0.1:{free_port()}"})
    try:
        deadline = time.monotonic() + 150
        contents = None
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                contents = httpx.get(f"http://127.0.0.1:{port}/api/contents",
                                     headers={"Authorization": "token compatlab-test"}, timeout=2)
                if contents.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        assert contents is not None and contents.status_code == 200
        listed = {item["name"] for item in contents.json()["content"]}
        # rooted at the work folder, filled from the release; the state file is hidden
        assert listed == {"start-here.ipynb", *COURSE.assignments()}, listed
        assert (work / "first-contact" / "first-contact.ipynb").is_file()
        # the learner's Jupyter: no formgrader (the instructor's), nbgrader's validate for learners
        assert httpx.get(f"http://127.0.0.1:{port}/formgrader", headers={"Authorization": "token compatlab-test"},
                         timeout=10).status_code == 404
        lesson = httpx.get(f"http://127.0.0.1:{port}/api/contents/compat-harness/compat-harness.ipynb",
                           headers={"Authorization": "token compatlab-test"}, timeout=10).json()
        assert lesson["type"] == "notebook" and lesson["content"]["cells"][0]["cell_type"] == "markdown"
        (jupyter,) = [pid for pid in _children(lab.pid) if b"jupyter" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        environ = dict(line.split("=", 1) for line in
                       Path(f"/proc/{jupyter}/environ").read_text().split("\0") if "=" in line)
        assert environ["OPENAI_BASE_URL"] == environ["OLLAMA_HOST"] + "/v1"
        status = httpx.get(environ["OLLAMA_HOST"] + "/lab/status").json()
        assert status["engine"] == "compatlab"
        # the real tier (installed by `make test`): the front at COMPATLAB_LLAMA_HOST, llama-server beside it
        front = httpx.get(environ["COMPATLAB_LLAMA_HOST"] + "/lab/status").json()
        assert front["backend"] == "llama.cpp" and front["llama_server"] == environ["LLAMA_SERVER_URL"]
    finally:
        lab.terminate()
        lab.wait(20)
    for url in (environ["OLLAMA_HOST"] + "/api/version", environ["LLAMA_SERVER_URL"] + "/health"):
        with pytest.raises(httpx.ConnectError):  # the engines went with it
            httpx.get(url)
    assert not Path(f"/proc/{jupyter}").exists() or b"zombie" in Path(f"/proc/{jupyter}/status").read_bytes().lower()


def test_lab_help_says_port_is_jupyters_and_engine_port_the_engines():
    result = _run("lab", "--help")
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip().startswith("--")}
    assert "JupyterLab's port" in lines["--port"] and "the lab engine's port" in lines["--engine-port"]
