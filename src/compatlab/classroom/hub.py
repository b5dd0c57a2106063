"""Start and stop the hub. It runs as root from the classroom venv; on SIGTERM it stops the
proxy, every user's server and the managed services itself (JupyterHub.cleanup: cleanup_servers
and cleanup_proxy default to True, app.py)."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from compatlab.classroom.paths import HUB_CONFIG, HUB_LOG, HUB_PID, STATE, VENV


class HubError(RuntimeError):
    """The hub did not start, or would not stop."""


def running_pid() -> int | None:
    """The hub's pid from its pid file, if that process is alive and is a jupyterhub."""
    try:
        pid = int(HUB_PID.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"jupyterhub" in command else None  # a reused pid is someone else's process


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as node's listen does: only a listener counts
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def start(port: int, timeout: float = 120) -> int:
    if _port_taken(port):
        raise HubError(f"127.0.0.1:{port} is taken by another program: choose another port with --port")
    log = open(HUB_LOG, "ab")  # noqa: SIM115 -- the hub's own stdout and stderr, for as long as it runs
    hub = subprocess.Popen([str(VENV / "bin" / "jupyterhub"), "-f", str(HUB_CONFIG)], cwd=STATE, stdin=subprocess.DEVNULL,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                           env={"PATH": f"{VENV}/bin:/usr/bin:/bin", "LANG": os.environ.get("LANG", "C.UTF-8")})
    url = f"http://127.0.0.1:{port}/hub/api/"  # its version, once the hub and the proxy both answer
    deadline, last = time.monotonic() + timeout, "nothing"
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise HubError(f"the hub exited ({hub.returncode}); its log, {HUB_LOG}, ends:\n{tail(HUB_LOG)}")
        try:
            reply = httpx.get(url, timeout=2)
            if reply.status_code == 200:
                return hub.pid
            last = f"HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.25)
    raise HubError(f"the hub did not answer at {url} within {timeout:.0f} s (last: {last}); "
                   f"{HUB_LOG} ends:\n{tail(HUB_LOG)}")


def stop(timeout: float = 60) -> bool:
    """SIGTERM, then wait for the hub to clean up; SIGKILL the whole session if it does not."""
    pid = running_pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    if Path(f"/proc/{pid}").exists():
        os.killpg(pid, signal.SIGKILL)  # its own session (start_new_session): the proxy with it
    HUB_PID.unlink(missing_ok=True)
    return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
