"""`compatlab check-service`: `compatlab check` for a classroom's learners, who must not read
the hidden tests.

On a shared hub the masters (answers, hidden tests) live in the instructor's folder, which no
learner can read. This small HTTP service runs as the instructor, beside the hub (a service the
hub starts: README, "Running a classroom"); a learner's `check()` posts the notebook as saved and
gets back what `compatlab check --json` prints: verdicts, points and messages, never test code.

Everything a request carries is a learner's: the body is read up to the grader's notebook limit,
written into a private folder under a name the service makes, and graded by `compatlab check` in
its own process, so the notebook runs in the grader's sandbox exactly as it would at grading
(run as root, the service's checks get the grader's own users, control groups and slots). A
caller must show a JupyterHub token (the kernel's JUPYTERHUB_API_TOKEN) that the hub says is a
user's; each user has one check at a time (claimed before the body is read), at most
UPLOADS bodies are read at once, each within UPLOAD_SECONDS, and `--parallel` checks run at once.

On a shared machine the service listens on a Unix socket (`--socket`) in a folder only its own
user can write: a learner cannot take its place (a TCP port on loopback is anyone's to bind
while the service is down, and `check()` sends the learner's token to whoever answers there).
uvicorn runs h11, which refuses a request line or headers over 16 KB.
"""

import asyncio
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from compatlab.grader.course import COURSE_VARIABLE, course_root
from compatlab.grader.intake import MAX_NOTEBOOK_BYTES

CHECK_TIMEOUT = 1800  # seconds: a whole lesson's cells under the grader's own limits, and a queue
NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")  # a notebook's or folder's name; no leading dot
UPLOADS = 4  # bodies read at once: at most 4 x 20 MB held
UPLOAD_SECONDS = 60  # a body that trickles in slower than this is dropped
CONNECTIONS = 64  # uvicorn answers 503 beyond this
TOKEN_SECONDS = 60  # how long the hub's answer about a token is kept


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


class HubUsers:
    """Who a token belongs to, by asking the hub (JUPYTERHUB_API_URL/user with that token), the
    answer kept for TOKEN_SECONDS; asked without blocking the other requests."""

    def __init__(self, hub_api: str) -> None:
        self.url = f"{hub_api.rstrip('/')}/user"
        self.known: dict[str, tuple[float, str | None]] = {}

    async def name(self, token: str) -> str | None:
        now = asyncio.get_running_loop().time()
        if (seen := self.known.get(token)) and now - seen[0] < TOKEN_SECONDS:
            return seen[1]
        name = None
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                reply = await client.get(self.url, headers={"Authorization": f"token {token}"})
            if reply.status_code == 200 and isinstance(found := reply.json().get("name"), str) and found:
                name = found
        except (httpx.HTTPError, ValueError, AttributeError):
            return None  # the hub did not answer: not remembered
        if len(self.known) > 10_000:
            self.known.clear()
        self.known[token] = (now, name)
        return name


def create_app(hub_api: str | None, parallel: int = 2) -> FastAPI:
    """hub_api None: no hub to ask, every caller is "learner" (one machine, one learner; tests)."""
    app = FastAPI(title="compatlab check service", docs_url=None, redoc_url=None, openapi_url=None)
    checks = Checks(parallel)
    uploads = asyncio.Semaphore(UPLOADS)
    users = HubUsers(hub_api) if hub_api is not None else None

    @app.get("/")
    def health() -> dict:
        return {"service": "compatlab check", "post": "/check?notebook=<name>.ipynb&folder=<its folder>"}

    @app.post("/check")
    async def check(request: Request, notebook: str, folder: str = "", exercise: str = "") -> JSONResponse:
        user = "learner"
        if users is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() not in ("token", "bearer") or not token:
                return _error(401, "send your JupyterHub token: Authorization: token $JUPYTERHUB_API_TOKEN")
            user = await users.name(token.strip())
            if user is None:
                return _error(403, "the hub does not know this token: log in to the hub again")
        if not NAME.fullmatch(notebook) or not notebook.endswith(".ipynb") or (folder and not NAME.fullmatch(folder)):
            return _error(400, "notebook must be a file name ending in .ipynb, and folder a folder's name "
                               "(letters, digits, . _ - only, not starting with a dot)")
        if exercise and not re.fullmatch(r"[A-Za-z0-9_]{1,80}", exercise):
            return _error(400, "exercise must be an exercise's name, e.g. read_usage")
        if not checks.start(user):
            return _error(409, "a check of yours is running already: wait for its verdicts")
        try:
            async with uploads:
                try:
                    body = await asyncio.wait_for(_read_body(request), UPLOAD_SECONDS)
                except asyncio.TimeoutError:
                    return _error(408, f"the notebook did not arrive within {UPLOAD_SECONDS} s")
            if body is None:
                return _error(413, f"the notebook is over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit for a notebook")
            from starlette.concurrency import run_in_threadpool

            return await run_in_threadpool(_run, checks, body, notebook, folder, exercise)
        finally:
            checks.end(user)

    return app


async def _read_body(request: Request) -> bytes | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_NOTEBOOK_BYTES:
            return None
    return bytes(body)


def _run(checks: Checks, body: bytes, notebook: str, folder: str, exercise: str) -> JSONResponse:
    """`compatlab check --json` on the notebook, in a folder named as the learner's (the lesson is
    read from those names, as `compatlab check` reads it from a path), in its own process."""
    try:
        return _check(checks, body, notebook, folder, exercise)
    except Exception as exc:  # noqa: BLE001 -- the learner gets a JSON error, the log the whole story
        print(f"compatlab check-service: {type(exc).__name__}: {exc}", file=sys.stderr)
        return _error(500, "the check could not run: the instructor finds why in the service's log")


def _check(checks: Checks, body: bytes, notebook: str, folder: str, exercise: str) -> JSONResponse:
    with checks.slots, tempfile.TemporaryDirectory(prefix="compatlab-check-service-") as tmp:
        course = Path(tmp) / "course"
        snapshot_course(course_root(), course)
        place = Path(tmp) / "notebook" / (folder or "notebook")
        place.mkdir(parents=True)
        (place / notebook).write_bytes(body)
        command = [sys.executable, "-m", "compatlab", "check", str(place / notebook), "--json",
                   *(["--exercise", exercise] if exercise else [])]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=CHECK_TIMEOUT, cwd=tmp,
                                  env={**os.environ, COURSE_VARIABLE: str(course)})
        except subprocess.TimeoutExpired:
            return _error(504, f"the check took over {CHECK_TIMEOUT // 60} minutes and was stopped")
        lines = done.stdout.strip().splitlines()
        try:
            report = json.loads(lines[-1])
        except (ValueError, IndexError):
            print(f"compatlab check failed (exit {done.returncode}): {done.stderr[-3000:]}", file=sys.stderr)
            return _error(500, "the check could not run: the instructor finds why in the service's log")
        return JSONResponse(report, status_code=400 if "error" in report else 200)


def snapshot_course(source: Path, target: Path) -> None:
    """What a check reads of the course (masters, release, grader settings, the sample class's
    known mistakes), copied for this one check: the service, root on a classroom, never writes in
    the instructor's folder (nbgrader writes each master's notebook beside it), and a master the
    instructor edits counts from the next check on. About 1.3 MB."""
    generated = shutil.ignore_patterns("*.ipynb", "__pycache__", ".ipynb_checkpoints")
    shutil.copytree(source / "solutions", target / "solutions", ignore=generated, symlinks=True)
    shutil.copytree(source / "lessons", target / "lessons", symlinks=True)
    shutil.copytree(source / "grader", target / "grader", ignore=generated, symlinks=True)
    for manifest in (source / "data" / "sample-class").glob("*/manifest.toml"):
        (target / manifest.parent.relative_to(source)).mkdir(parents=True)
        shutil.copyfile(manifest, target / manifest.relative_to(source))


def private_socket(path: Path) -> str:
    """Why this socket's folder is not one only this user can write ("" when it is): made if
    missing, never followed if it is a link."""
    folder = path.parent
    try:
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        return f"cannot make {folder}: {exc.strerror}"
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        return f"{folder} must be a folder of this user's that nobody else can write (a learner could take the socket's place)"
    return ""


def run_check_service(host: str, port: int, parallel: int, no_hub: bool, socket_path: str | None = None) -> int:
    import uvicorn

    if parallel < 1:
        print(f"compatlab check-service: --parallel must be at least 1, not {parallel}", file=sys.stderr)
        return 2
    hub_api = None if no_hub else os.environ.get("JUPYTERHUB_API_URL")
    if hub_api is None and not no_hub:
        print("compatlab check-service: JUPYTERHUB_API_URL is not set: run it as a JupyterHub service "
              "(README, 'Running a classroom'), or pass --no-hub for one learner's own machine", file=sys.stderr)
        return 2
    where = {"host": host, "port": port}
    if socket_path:
        if problem := private_socket(Path(socket_path)):
            print(f"compatlab check-service: {problem}", file=sys.stderr)
            return 2
        where = {"uds": socket_path}
    uvicorn.run(create_app(hub_api, parallel), **where, http="h11", limit_concurrency=CONNECTIONS,
                timeout_keep_alive=5, log_level="warning")
    return 0
