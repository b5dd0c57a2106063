"""Start and stop a lab engine in a child process (tests, demo, lab and grading all use this).

Standard library only: a lesson's kernel imports this to start or find its engines, so it must
not pay for the engine's own imports (FastAPI, uvicorn, pydantic: ~480 modules). The engine runs
as `python -m compatlab engine serve` and announces its URL on stdout with the READY line;
several run as `python -m compatlab engine group`, one READY line each, followed by its name.
"""

import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time

READY = "compatlab engine ready at "  # the engine prints this and its URL once it listens (engine/server.py)
FAST = ("--tokens-per-second", "0", "--ttft-ms", "0", "--load-ms", "0")  # no pacing, no load time


def stop_child(process: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM, and SIGKILL if it has not ended within `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class EngineStartError(RuntimeError):
    """The engine process did not become ready."""


def die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to the engine if its parent dies, so none is orphaned.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class EngineProcess:
    """A lab engine in a child process, on a free loopback port unless told otherwise."""

    def __init__(self, *args: str, host: str = "127.0.0.1", port: int = 0, fast: bool = False,
                 prefix: tuple[str, ...] = ()) -> None:
        self.args = list(args)
        self.prefix = list(prefix)  # run the engine through this (grading: a sandbox of its own)
        if fast:  # what tests and benchmarks want
            self.args += FAST
        self.host, self.port = host, port
        self.url = ""
        self.urls: dict[str, str] = {}  # what each READY line announced, by engine name ("" alone)
        self.names: tuple[str, ...] = ("",)
        self.process: subprocess.Popen | None = None
        self._stderr = tempfile.TemporaryFile()

    def _engine_command(self) -> list[str]:
        return ["engine", "serve", "--host", self.host, "--port", str(self.port), *self.args]

    @property
    def v1_url(self) -> str:
        return self.url + "/v1"

    def start(self, timeout: float = 20.0) -> "EngineProcess":
        return self.launch().wait_ready(timeout)

    def launch(self) -> "EngineProcess":
        """Start the process without waiting. Call from the thread that will outlive the engine:
        the kernel's parent-death signal fires when the launching *thread* ends."""
        self._command = [*self.prefix, sys.executable, "-m", "compatlab", *self._engine_command()]
        self.process = subprocess.Popen(self._command, stdout=subprocess.PIPE, stderr=self._stderr,
                                        stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        return self

    def wait_ready(self, timeout: float = 20.0) -> "EngineProcess":
        """Wait for the READY line (a group: one per engine); several launched engines can boot
        while we wait for one. Reads the pipe itself: a group's lines may come in one read."""
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline, pending = time.monotonic() + timeout, b""
        while time.monotonic() < deadline:
            if selector.select(timeout=0.05):
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:  # stdout closed: the process ended
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                for line in (raw.decode(errors="replace") for raw in lines):
                    if line.startswith(READY):
                        url, _, name = line[len(READY):].strip().partition(" ")
                        self.urls[name] = url
                if all(name in self.urls for name in self.names):
                    self.url = self.urls.get("", "")
                    return self
            if self.process.poll() is not None:
                break
        self.stop()
        raise EngineStartError(f"the lab engine did not start ({' '.join(self._command[len(self.prefix) + 1:])}):\n"
                               f"{self.stderr()}")

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self, timeout: float = 5.0) -> None:
        stop_child(self.process, timeout)

    def __enter__(self) -> "EngineProcess":
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EngineGroup(EngineProcess):
    """Several lab engines from one process (`compatlab engine group`), which imports the engine
    once and forks a child per engine, each on a free loopback port of its own: four engines
    cost one start's CPU instead of four. `urls` maps each name to its engine's root URL."""

    def __init__(self, engines: dict[str, list[str]], host: str = "127.0.0.1", prefix: tuple[str, ...] = ()) -> None:
        super().__init__(host=host, prefix=prefix)
        self.engines = engines  # {name: `compatlab engine serve` arguments}
        self.names = tuple(engines)

    def _engine_command(self) -> list[str]:
        return ["engine", "group", "--host", self.host, json.dumps(self.engines)]


def engine_env(url: str) -> dict[str, str]:
    """The standard variables notebook code reads, pointed at an engine."""
    return {"OLLAMA_HOST": url, "OPENAI_BASE_URL": url + "/v1",
            "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "compatlab")}  # required by the SDK, ignored by engines
