"""The lessons' support code: serving a learner's app, a hanging host, a closed port."""

import json
import time

import httpx
import pytest
from fastapi import FastAPI

from compatlab.grader.course import Course
from compatlab.grader.release import reference_code
from compatlab.lessonkit import black_hole, closed_port, serve_app


def app_with_a_bug() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict:
        return {"ok": True}

    @app.get("/bug")
    async def bug() -> dict:
        raise RuntimeError("a learner's bug")

    return app


def test_serve_app_serves_and_keeps_the_apps_errors_off_stderr(capfd):
    with serve_app(app_with_a_bug()) as served:
        assert httpx.get(served.url + "/ok").json() == {"ok": True}
        assert httpx.get(served.url + "/bug").status_code == 500
    assert any("a learner's bug" in error for error in served.errors)
    assert "a learner's bug" not in capfd.readouterr().err  # nbgrader would zero the cell
    with pytest.raises(httpx.ConnectError):
        httpx.get(served.url + "/ok")  # stopped when the block ends


def test_serve_app_runs_the_lifespan():
    import contextlib

    events = []

    @contextlib.asynccontextmanager
    async def lifespan(app):
        events.append("start")
        yield
        events.append("stop")

    with serve_app(FastAPI(lifespan=lifespan)):
        assert events == ["start"]
    assert events == ["start", "stop"]


def test_a_black_hole_accepts_and_never_answers():
    with black_hole() as url:
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):  # connected, then nothing
            httpx.get(url + "/api/version", timeout=httpx.Timeout(0.3, connect=2.0))
        assert time.monotonic() - start < 1.5


def test_a_closed_port_refuses_at_once():
    start = time.monotonic()
    with pytest.raises(httpx.ConnectError):
        httpx.get(closed_port() + "/api/version", timeout=5)
    assert time.monotonic() - start < 1.0


def test_reference_code_runs_a_lessons_solution_outside_the_notebook(engine, monkeypatch):
    """What bench/proxy_overhead.py runs: the master's setup and solution cells, no notebook."""
    monkeypatch.setenv("COMPATLAB_ENGINES", json.dumps({"ollama": engine.url, "paced": engine.url}))
    namespace: dict = {}
    exec(reference_code(Course(), "ndjson-sse-proxy", ("native_request", "ChunkTranslator", "relay", "make_app")),
         namespace)
    with serve_app(namespace["make_app"](engine.url)) as proxy:
        reply = httpx.post(proxy.url + "/v1/chat/completions", timeout=10,
                           json={"model": "lab:latest", "messages": [{"role": "user", "content": "Write 3 words"}]})
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "Turn 1."
    with pytest.raises(KeyError, match="no cell nope"):
        reference_code(Course(), "ndjson-sse-proxy", ("nope",))
