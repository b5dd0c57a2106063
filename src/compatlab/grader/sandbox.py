"""Sandboxed kernels for grading, without Docker: bubblewrap, an unprivileged user, rlimits.

nbgrader runs student code with the grader's rights. `compatlab grade` instead gives nbgrader a
`python3` kernelspec whose command is this module: it starts the real kernel inside
bubblewrap (Debian's `bwrap`) as an unprivileged user, so each submission's code

- sees only the system, the Python environment, compatlab's own code and recorded traces
  (read-only), its own grading folder (writable), and a private, empty /tmp and $HOME: not
  solutions/, not the gradebook, not other students' folders;
- runs in its own network namespace, whose loopback has only the lab engines, relayed over
  Unix sockets (relay.py); nothing else on the machine or the internet is reachable;
- runs in its own PID namespace, as a user of its own per worker, so it cannot signal the
  engines, the grader or another student's kernel;
- has a memory cap (RLIMIT_AS per process) and a process cap (RLIMIT_NPROC for its user).

The kernel talks to nbgrader over ZeroMQ IPC sockets in a shared runtime folder, since TCP
cannot cross the network namespace. Cell time limits and output caps are nbgrader's side (see
execute.py); the kernel-side guard (guard.py) undoes monkeypatching between cells.

What it does not protect against: CPU and disk-bandwidth hogging within the time limit, a
flood of requests to the shared lab engines, kernel exploits, and a submission written to
disable the guard itself (its code is there for the instructor to read). Without root, the
process cap counts the grader's user's own processes too (see README, "Grading safely").
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

# Not compatlab.grader.course.REPO: this module starts every sandboxed kernel, and importing
# course.py (jupytext, nbformat) would add a second to each start.
REPO = Path(__file__).resolve().parents[3]

SETTINGS_VARIABLE = "COMPATLAB_SANDBOX"  # JSON: Sandbox, for the kernel launcher
RELAY_VARIABLE = "COMPATLAB_RELAY"  # inside: "PORT=SOCKET …", the engines the kernel relays to
TOOLS = ("bwrap", "setpriv", "prlimit")
FIRST_UID = 61000  # sandbox users are 61000 + slot; nothing on a Debian machine uses them
SLOTS = 64


@dataclass
class Sandbox:
    """Where the sandboxes' shared pieces live, and the limits every kernel gets."""

    root: str  # holds runtime/ (IPC sockets), bridges/ (engine sockets), homes/, slots/
    memory_mb: int = 4096  # address space per process: Python, numpy and threads reserve a lot
    processes: int = 512  # processes and threads of the sandbox's user
    bridges: tuple[int, ...] = ()  # loopback ports the kernel may reach (the lab engines)
    uid: int | None = None  # set per worker process; None: no user switch (not root)

    @property
    def runtime(self) -> Path:
        return Path(self.root) / "runtime"


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def unavailable() -> str:
    """Why kernels cannot be sandboxed here, in one line; "" when they can."""
    missing = missing_tools()
    if missing:
        return (f"{', '.join(missing)} not found: install them (`make sandbox`, or "
                "`apt-get install bubblewrap util-linux`) or grade with --no-sandbox")
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here ({probe.stderr.strip()}); grade with --no-sandbox"
    return ""


def kernelspec_dir(root: Path, sandboxed: bool) -> Path:
    """A JUPYTER_PATH entry whose `python3` kernel is the guarded kernel (guard.py), started
    through this module's launcher when sandboxed. Put first in JUPYTER_PATH, it wins over
    ipykernel's own `python3`, so every kernel nbgrader starts is one of these."""
    spec = root / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    module = ["compatlab.grader.sandbox", "{connection_file}"] if sandboxed else \
        ["compatlab.grader.guard", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", *module], "language": "python",
        # "message": the kernel interrupts itself when asked on its control channel. A signal
        # would go to bwrap's process group, and SIGINT stops bwrap, and with it the kernel.
        "interrupt_mode": "message",
        "display_name": "Python 3 (compatlab grading)"}))
    return root / "jupyter"


def prepare(root: Path, **limits) -> Sandbox:
    """The shared folders, world-writable and sticky like /tmp, since kernels run as other users.
    The engines' ports (`bridges`) are added once the engines run."""
    for name in ("runtime", "bridges", "homes", "slots"):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name).chmod(0o1777)
    return Sandbox(str(root), **limits)


class EngineBridges:
    """The grader's side of the engine relay: a Unix socket per engine port (relay.py)."""

    def __init__(self, sandbox: Sandbox) -> None:
        bridges = Path(sandbox.root) / "bridges"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "compatlab.grader.relay", "out",
             *(f"{port}={bridges / f'{port}.sock'}" for port in sandbox.bridges)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the engine relay did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(5)


def claim_uid(root: Path) -> tuple[int | None, object]:
    """A sandbox user for this worker process, held (by a lock) until the process exits, so
    two workers never share a process budget. None when not root: no user switch then."""
    if os.geteuid() != 0:
        return None, None
    for slot in range(SLOTS):
        handle = open(root / "slots" / str(slot), "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return FIRST_UID + slot, handle
    raise RuntimeError(f"all {SLOTS} sandbox users are taken")


def settings_env(sandbox: Sandbox) -> dict[str, str]:
    return {SETTINGS_VARIABLE: json.dumps(asdict(sandbox)), "JUPYTER_RUNTIME_DIR": str(sandbox.runtime)}


def _readonly_paths() -> list[Path]:
    """What a kernel needs to read: the system, Python (the venv and its base), compatlab's
    code and recorded data; never the repository root, whose solutions/ it must not see."""
    paths = [Path("/usr"), Path("/etc"), Path(sys.prefix), Path(sys.base_prefix),
             REPO / "src", REPO / "data" / "traces", REPO / "data" / "templates"]
    return [p for p in dict.fromkeys(paths) if p.exists()]


def command(sandbox: Sandbox, cwd: str, home: Path, kernel_args: list[str]) -> list[str]:
    """The whole command line that starts one sandboxed kernel.

    As root, bwrap builds the sandbox with root's rights (so it can mount Python from under
    /root) but without a user namespace, and `setpriv` inside becomes the worker's sandbox
    user: a real, unprivileged user, so RLIMIT_NPROC counts only that worker's kernel. Without
    root, bwrap uses a user namespace and the process cap applies to the grader's own user."""
    namespaces = (["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
                  if sandbox.uid is not None else ["--unshare-all"])
    bwrap = ["bwrap", *namespaces, "--die-with-parent", "--proc", "/proc", "--dev", "/dev", "--bind", str(home), "/tmp"]
    for link in ("bin", "sbin", "lib", "lib32", "lib64"):
        if Path("/" + link).is_symlink():
            bwrap += ["--symlink", os.readlink("/" + link), "/" + link]
    mounts = [*_readonly_paths(), Path(cwd), sandbox.runtime, Path("/run/bridges")]
    # bwrap makes missing parent folders mode 0700 (root's), which the sandbox user could not
    # cross: make them 0755 first (under /tmp too, when the grading folder is there)
    for parent in sorted({p for path in mounts for p in path.parents if p not in (Path("/"), Path("/tmp"))},
                         key=lambda p: len(p.parts)):
        bwrap += ["--perms", "0755", "--dir", str(parent)]
    for path in _readonly_paths():
        bwrap += ["--ro-bind", str(path), str(path)]
    bwrap += ["--bind", cwd, cwd, "--bind", str(sandbox.runtime), str(sandbox.runtime),
              "--ro-bind", str(Path(sandbox.root) / "bridges"), "/run/bridges",
              "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", "--chdir", cwd,
              # the kernel's parent in the sandbox is bwrap's init, PID 1, which ipykernel would take
              # for "my parent died"; --die-with-parent does that job instead
              "--unsetenv", "JPY_PARENT_PID"]
    user = [] if sandbox.uid is None else ["setpriv", f"--reuid={sandbox.uid}", f"--regid={sandbox.uid}",
                                           "--clear-groups", "--no-new-privs"]
    limits = ["prlimit", f"--as={sandbox.memory_mb * 2**20}", f"--nproc={sandbox.processes}"]
    relay = " ".join(f"{port}=/run/bridges/{port}.sock" for port in sandbox.bridges)
    kernel = [sys.executable, "-m", "compatlab.grader.guard", "-f", "/tmp/connection.json", *kernel_args]
    return [*bwrap, "--setenv", RELAY_VARIABLE, relay, "--", *user, *limits, *kernel]


def launch(connection_file: str, kernel_args: list[str]) -> None:
    """The kernelspec's command, run by nbgrader as the grader: give this kernel a private
    home holding its own copy of the connection file, then become the sandbox."""
    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    sandbox = Sandbox(**{**settings, "bridges": tuple(settings["bridges"])})
    home = Path(tempfile.mkdtemp(dir=Path(sandbox.root) / "homes"))
    cwd = os.getcwd()
    shutil.copy(connection_file, home / "connection.json")  # the original is root's, mode 0600
    if sandbox.uid is not None:
        for path in (home, home / "connection.json", Path(cwd)):
            os.chown(path, sandbox.uid, sandbox.uid)
    argv = command(sandbox, cwd, home, kernel_args)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    launch(sys.argv[1], sys.argv[2:])
