"""`compatlab check-service`: `compatlab check` for a classroom's learners, who must not read
the hidden tests.

On a shared hub the masters (answers, hidden tests) live in the instructor's folder, which no
learner can read. This small HTTP service runs as the instructor, beside the hub (a service the
hub starts: README, "Running a classroom"); a learner's `check()` posts the notebook as saved and
gets back what `compatlab check --json` prints: verdicts, points and messages, never test code.

Everything a request carries is a learner's: the body is read up to the grader's notebook limit,
written into a private folder under a name the service makes, and graded by `compatlab check` in
its own process, so the notebook runs in the grader's sandbox exactly as it would at grading. A
caller must show a JupyterHub token (the kernel's JUPYTERHUB_API_TOKEN) that the hub says is a
user's; each user has one check running at a time, and at most `--parallel` run at once.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from compatlab.grader.intake import MAX_NOTEBOOK_BYTES

CHECK_TIMEOUT = 1800  # seconds: a whole lesson's cells under the grader's own limits, and a queue
NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # a notebook's or folder's name, as the learner sent it


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Checks:
    """Who is checking now, and how many checks run at once."""

    def __init__(self, parallel: int) -> None:
        self.slots = threading.BoundedSemaphore(parallel)
        self.lock = threading.Lock()
        self.running: set[str] = set()

    def start(self, user: str) -> bool:
        with self.lock:
            if user in self.running:
                return False
            self.running.add(user)
            return True

    def end(self, user: str) -> None:
        with self.lock:
            self.running.discard(user)


def hub_user(token: str, hub_api: str) -> str | None:
    """The hub's name for the user whose token this is; None if the hub does not know it."""
    try:
        reply = httpx.get(f"{hub_api.rstrip('/')}/user", headers={"Authorization": f"token {token}"}, timeout=10)
        if reply.status_code == 200:
            name = reply.json().get("name")
            return name if isinstance(name, str) and name else None
    except (httpx.HTTPError, ValueError, AttributeError):
        pass
    return None


def create_app(hub_api: str | None, parallel: int = 2) -> FastAPI:
    """hub_api None: no hub to ask, every caller is "learner" (one machine, one learner; tests)."""
    app = FastAPI(title="compatlab check service", docs_url=None, redoc_url=None, openapi_url=None)
    checks = Checks(parallel)

    @app.get("/")
    def health() -> dict:
        return {"service": "compatlab check", "post": "/check?notebook=<name>.ipynb&folder=<its folder>"}

    @app.post("/check")
    async def check(request: Request, notebook: str, folder: str = "", exercise: str = "") -> JSONResponse:
        user = "learner"
        if hub_api is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() not in ("token", "bearer") or not token:
                return _error(401, "send your JupyterHub token: Authorization: token $JUPYTERHUB_API_TOKEN")
            user = hub_user(token.strip(), hub_api)
            if user is None:
                return _error(403, "the hub does not know this token: log in to the hub again")
        if not NAME.fullmatch(notebook) or not notebook.endswith(".ipynb") or (folder and not NAME.fullmatch(folder)):
            return _error(400, "notebook must be a file name ending in .ipynb, and folder a folder's name "
                               "(letters, digits, . _ - only)")
        if exercise and not re.fullmatch(r"[A-Za-z0-9_]{1,80}", exercise):
            return _error(400, "exercise must be an exercise's name, e.g. read_usage")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_NOTEBOOK_BYTES:
                return _error(413, f"the notebook is over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit for a notebook")
        if not checks.start(user):
            return _error(409, "a check of yours is running already: wait for its verdicts")
        try:
            from starlette.concurrency import run_in_threadpool

            return await run_in_threadpool(_run, checks, bytes(body), notebook, folder, exercise)
        finally:
            checks.end(user)

    return app


def _run(checks: Checks, body: bytes, notebook: str, folder: str, exercise: str) -> JSONResponse:
    """`compatlab check --json` on the notebook, in a folder named as the learner's (the lesson is
    read from those names, as `compatlab check` reads it from a path), in its own process."""
    with checks.slots, tempfile.TemporaryDirectory(prefix="compatlab-check-service-") as tmp:
        place = Path(tmp) / (folder or "notebook")
        place.mkdir()
        (place / notebook).write_bytes(body)
        command = [sys.executable, "-m", "compatlab", "check", str(place / notebook), "--json",
                   *(["--exercise", exercise] if exercise else [])]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=CHECK_TIMEOUT, cwd=tmp)
        except subprocess.TimeoutExpired:
            return _error(504, f"the check took over {CHECK_TIMEOUT // 60} minutes and was stopped")
        lines = done.stdout.strip().splitlines()
        try:
            report = json.loads(lines[-1])
        except (ValueError, IndexError):
            print(f"compatlab check failed (exit {done.returncode}): {done.stderr[-3000:]}", file=sys.stderr)
            return _error(500, "the check could not run: the instructor finds why in the service's log")
        return JSONResponse(report, status_code=400 if "error" in report else 200)


def run_check_service(host: str, port: int, parallel: int, no_hub: bool) -> int:
    import uvicorn

    if parallel < 1:
        print(f"compatlab check-service: --parallel must be at least 1, not {parallel}", file=sys.stderr)
        return 2
    hub_api = None if no_hub else os.environ.get("JUPYTERHUB_API_URL")
    if hub_api is None and not no_hub:
        print("compatlab check-service: JUPYTERHUB_API_URL is not set: run it as a JupyterHub service "
              "(README, 'Running a classroom'), or pass --no-hub for one learner's own machine", file=sys.stderr)
        return 2
    uvicorn.run(create_app(hub_api, parallel), host=host, port=port, log_level="warning")
    return 0
