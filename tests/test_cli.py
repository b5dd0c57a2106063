"""The command line as a user runs it: serve, doctor and demo, as real processes."""

import os
import socket
import subprocess
import sys

import httpx

from compatlab.process import EngineProcess

COMPATLAB = [sys.executable, "-m", "compatlab"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    result = _run("doctor", env={"OLLAMA_HOST": f"127.0.0.1:{_free_port()}"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lab engine" in result.stdout and "chat with lab:latest" in result.stdout


def test_doctor_fails_with_a_fix_when_ollama_is_required_but_down():
    result = _run("doctor", "--backend", "ollama", env={"OLLAMA_HOST": f"127.0.0.1:{_free_port()}"})
    assert result.returncode == 1
    assert "ollama serve" in result.stdout and "OLLAMA_HOST" in result.stdout


def test_doctor_tells_a_lab_engine_at_ollama_host_apart(engine):
    result = _run("doctor", env={"OLLAMA_HOST": engine.url})
    assert result.returncode == 0 and "compatlab lab engine" in result.stdout


def test_demo_prints_its_table():
    result = _run("demo", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    for kind in ("stream", "tools", "structured output", "thinking", "embeddings", "fault"):
        assert kind in result.stdout
    assert "7 of 7 exchanges behaved as expected" in result.stdout
    assert "stopped cleanly" in result.stdout
