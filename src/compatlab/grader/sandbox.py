"""The sandbox one submission runs in, and the one way in and out of it.

`compatlab grade` may run as root. The design: root never touches a path, link or name that
student code could have made. A submission's code runs in a sandbox of its own, made fresh for
it and destroyed after it:

- Debian's bubblewrap gives it its own PID, network, IPC and UTS namespaces and a new session;
  the system, the Python environment, compatlab's code and recorded traces read-only; and one
  writable place, a size-capped tmpfs at /tmp that vanishes with it. No folder of the host is
  writable inside, so nothing in it can be a link or a FIFO planted for root.
- Its environment is an allowlist (`ENVIRONMENT`, the engines' addresses), nothing else.
- Its only way to the network is the lab engines, relayed over Unix sockets (relay.py).
- Inside, two unprivileged users per worker: the runner (runner.py), which drives the notebook,
  and the kernel, a second user with no capabilities, so the kernel cannot signal, trace or
  write to the runner. As root the kernel is forked into the sandbox from the worker's
  pre-imported template (warm.py); otherwise the runner starts it.
- Limits: a control group per sandbox for memory and processes together (cgroups.py, as root),
  rlimits per kernel process (address space, processes of its user, file size, no core dumps),
  and a wall-clock limit for the whole run, after which everything in it is killed.

Root writes the job (the notebook's code cells, their roles, the limits) to the runner's stdin
and reads its stdout and stderr, each capped in size, within the time limit. That is all.
"""

import ctypes
import fcntl
import json
import os
import selectors
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from compatlab.grader import seccomp
from compatlab.grader.cgroups import SandboxGroup

# Not compatlab.grader.course.REPO: course.py imports jupytext and nbformat, which the root
# side of a worker has anyway, but this module must stay light for the tests that probe it.
REPO = Path(__file__).resolve().parents[3]
TOOLS = ("bwrap", "setpriv", "prlimit")
FIRST_UID = 61000  # sandbox users are 61000 + 2·slot (runner) and + 1 (kernel); Debian leaves them unused
ENGINE_UID = 60999  # the shared lab engines' user while grading
SLOTS = 64
RELAY_CONNECTIONS = 256  # open connections to the engines per worker's relay
# the grader's variables a kernel may see: what lessons read; nothing else crosses. The SDK
# needs an API key, which the engines ignore: kernels get a placeholder, never the grader's own
ENVIRONMENT = ("OLLAMA_HOST", "OPENAI_BASE_URL", "COMPATLAB_ENGINES", "NBGRADER_EXECUTION")
PLACEHOLDER_API_KEY = "compatlab"
BRIDGES_INSIDE = "/run/bridges"
# A sandbox's own paced lab engine (backends.LESSON_ENGINES["paced"]), for a lesson that uses
# one: its runner starts it as soon as the sandbox is up, on this port of the sandbox's own
# loopback, or the next free one above it where a relayed engine has that port.
PACED_PORT = 11436


@dataclass(frozen=True)
class Limits:
    """What one submission may use. The README's "Grading safely" lists them."""

    cell_timeout: int = 30  # seconds per cell
    notebook_timeout: int = 600  # seconds for the whole notebook
    memory_mb: int = 4096  # the whole sandbox (a control group), and each kernel process (address space)
    processes: int = 512  # processes and threads of the kernel's user
    tmp_mb: int = 512  # the sandbox's only writable place, /tmp (counted in its memory too)
    file_mb: int = 256  # one file
    files: int = 1024  # open files and sockets of a kernel process (soft and hard)
    cell_output_bytes: int = 2_000_000
    notebook_output_bytes: int = 10_000_000  # every output message, display updates and widgets included
    message_bytes: int = 8 * 2**20  # one message from the kernel
    log_bytes: int = 256 * 1024  # the sandbox's terminal output kept in grading.log
    run_demos: bool = False  # the lessons' demonstrations too (they grade nothing): --run-demos


@dataclass
class Sandbox:
    """Where the shared pieces live, the limits, and this worker's users."""

    root: str  # bridges/ (the engines' Unix sockets) and slots/ (which worker has which users)
    limits: Limits = field(default_factory=Limits)
    isolated: bool = True  # False: --no-sandbox, the runner and kernel run as plain processes
    bridges: tuple[int, ...] = ()  # the lab engines' loopback ports, relayed into the sandbox
    slot: int = 0  # this worker's: its users (as root) and its own relay to the engines
    uids: tuple[int, int] | None = None  # (runner, kernel); None: no user switch (not root)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Sandbox":
        data = json.loads(text)
        return cls(data["root"], Limits(**data["limits"]), data["isolated"], tuple(data["bridges"]), data["slot"],
                   tuple(data["uids"]) if data["uids"] else None)


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def unavailable() -> str:
    """Why submissions cannot be sandboxed here, in one line; "" when they can."""
    missing = missing_tools()
    if missing:
        return (f"{', '.join(missing)} not found: install them (`make sandbox`, or "
                "`apt-get install bubblewrap util-linux`) or grade with --no-sandbox")
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here ({probe.stderr.strip()}); grade with --no-sandbox"
    return ""


def prepare(root: Path, limits: Limits, isolated: bool) -> Sandbox:
    """The shared folders: bridges/ for the engine relay's sockets, slots/ for the users' locks.
    Both are root's; nothing in a sandbox can write to either."""
    for name in ("bridges", "slots"):
        (root / name).mkdir(parents=True, exist_ok=True)
    return Sandbox(str(root), limits, isolated)


class EngineBridges:
    """The grader's side of the engine relay (relay.py): for each worker slot, its own relay
    process and Unix sockets (bridges/<slot>/<port>.sock), each relay taking at most
    RELAY_CONNECTIONS connections at once. A sandbox that opens thousands exhausts only its
    own worker's relay, and only while it runs; the other workers' students are not affected."""

    def __init__(self, sandbox: Sandbox, slots: int) -> None:
        self.processes = []
        for slot in range(slots):
            folder = Path(sandbox.root) / "bridges" / str(slot)
            folder.mkdir(parents=True, exist_ok=True)
            # gone with the process (thread) that started it: a killed cluster worker leaves none
            process = subprocess.Popen(
                [sys.executable, "-m", "compatlab.grader.relay", "out", f"--limit={RELAY_CONNECTIONS}",
                 *(f"{port}={folder / f'{port}.sock'}" for port in sandbox.bridges)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
            self.processes.append(process)
        for process in self.processes:
            if process.stdout.readline().strip() != "ready":
                self.stop()
                raise RuntimeError("the engine relay did not start")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(5)


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


MACHINE_SLOTS = Path("/run/compatlab-slots")  # as root: the users' locks, for every grading run


def claim_slot(root: Path) -> tuple[int, object]:
    """A slot of this run for this worker process, held (by a lock) until it exits: its relay."""
    return _claim(root / "slots")


def claim_users() -> tuple[tuple[int, int] | None, object]:
    """As root, two users for this worker process, held (by a lock) until it exits, so two
    workers never share a process budget. The locks are the machine's, not the run's: two runs
    at once (an instructor's grade, learners' checks) must never hand the same users to two
    sandboxes. Not root: no user switch (None)."""
    if os.geteuid() != 0:
        return None, None
    slot, handle = _claim(_machine_slots())
    return (FIRST_UID + 2 * slot, FIRST_UID + 2 * slot + 1), handle


def _claim(folder: Path) -> tuple[int, object]:
    for slot in range(SLOTS):
        handle = open(folder / str(slot), "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return slot, handle
    raise RuntimeError(f"all {SLOTS} sandbox slots are taken")


def _machine_slots() -> Path:
    try:
        MACHINE_SLOTS.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(MACHINE_SLOTS)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise RuntimeError(f"{MACHINE_SLOTS} is not a folder only root can write")
    return MACHINE_SLOTS


# ---------------------------------------------------------------- command lines


def _readonly_paths() -> list[Path]:
    """What the sandbox reads: the system, Python (the venv and its base), compatlab's code and
    recorded data; never the repository root, whose solutions/ it must not see."""
    paths = [Path("/usr"), Path("/etc"), Path(sys.prefix), Path(sys.base_prefix),
             REPO / "src", REPO / "data" / "traces", REPO / "data" / "templates"]
    return [p for p in dict.fromkeys(paths) if p.exists()]


def runner_command(sandbox: Sandbox, seccomp_fd: int | None = None, info_fd: int | None = None,
                   ready_fd: int | None = None, paced: dict | None = None) -> list[str]:
    """The command that starts the runner: in bubblewrap, as the runner's user, when isolated,
    under the seccomp filter on `seccomp_fd` (seccomp.py) when there is one. With `info_fd`,
    bubblewrap writes there which namespaces it made; with `ready_fd`, the runner closes it
    once it is up (a warm kernel can join the sandbox then: warm.py); with `paced`
    (paced_engine's), it starts the sandbox's own paced engine."""
    python = [sys.executable, "-I", "-m", "compatlab.grader.runner", *([f"--ready-fd={ready_fd}"] if ready_fd else [])]
    if not sandbox.isolated:
        return python
    if paced:
        python.append(f"--paced-engine={json.dumps(paced)}")
    limits = sandbox.limits
    if sandbox.uids:  # root: namespaces without a user namespace, then the worker's users
        namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                      # all bwrap keeps for inside: what the runner needs to start the kernel as
                      # another user and to stop it (only processes of this sandbox are visible)
                      "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                      "--cap-add", "CAP_KILL", "--cap-add", "CAP_SETPCAP"]
    else:
        namespaces = ["--unshare-all"]
    bwrap = ["bwrap", *namespaces, "--die-with-parent", "--new-session", "--clearenv",
             "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(limits.tmp_mb * 2**20),
             "--tmpfs", "/tmp", *_system_links(), *_readonly_mounts((Path(BRIDGES_INSIDE),)),
             "--ro-bind", str(Path(sandbox.root) / "bridges" / str(sandbox.slot)), BRIDGES_INSIDE, "--chdir", "/"]
    if seccomp_fd is not None:
        bwrap += ["--seccomp", str(seccomp_fd)]
    if info_fd is not None:
        bwrap += ["--info-fd", str(info_fd)]
    for name, value in runner_env().items():
        bwrap += ["--setenv", name, value]
    user = []
    if sandbox.uids:
        runner = sandbox.uids[0]
        user = ["setpriv", f"--reuid={runner}", f"--regid={runner}", "--clear-groups",
                # the runner keeps only what starting and stopping the kernel as its own user
                # takes, and can never gain more: no root, whatever it executes
                "--inh-caps=-all,+setuid,+setgid,+kill", "--ambient-caps=+setuid,+setgid,+kill",
                "--bounding-set=-all,+setuid,+setgid,+kill",
                "--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked"]
    return [*bwrap, "--", *user, *python]


def uses_paced_engine(job: dict) -> bool:
    """Whether the lesson's own cells name the paced engine. Only a matter of speed: a kernel
    that asks lab_engines() for one its sandbox does not have starts its own, as outside."""
    return any('"paced"' in cell["source"] for cell in job["cells"] if cell["role"] != "student")


def paced_engine(sandbox: Sandbox) -> dict:
    """The sandbox's own paced engine, for its runner to start: on the sandbox's loopback (its
    network namespace has nothing else), as the kernel's user with the kernel's rlimits, exactly
    as when the kernel started it itself; only earlier, beside the kernel's start and not in the
    notebook's setup cell."""
    from compatlab.backends import LESSON_ENGINES

    port = next(port for port in range(PACED_PORT, 65536) if port not in sandbox.bridges)
    return {"args": list(LESSON_ENGINES["paced"]), "port": port, "prefix": kernel_prefix(sandbox)}


def engine_prefix() -> list[str]:
    """What `compatlab grade` puts before the shared lab engines' command when it runs as root:
    the engines read every request a sandboxed kernel sends, so they run as a user of their own
    (ENGINE_UID), with no capabilities, in a sandbox that reads only Python and compatlab and
    writes only a private /tmp. They keep the host's loopback: the relay reaches them there."""
    if os.geteuid() != 0 or missing_tools():
        return []
    bwrap = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--die-with-parent", "--new-session",
             "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP",
             "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(64 * 2**20), "--tmpfs", "/tmp",
             *_system_links(), *_readonly_mounts()]
    user = ["setpriv", f"--reuid={ENGINE_UID}", f"--regid={ENGINE_UID}", "--clear-groups", "--inh-caps=-all",
            "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return [*bwrap, "--", *user]


def _system_links() -> list[str]:
    links = []
    for link in ("bin", "sbin", "lib", "lib32", "lib64"):
        if Path("/" + link).is_symlink():
            links += ["--symlink", os.readlink("/" + link), "/" + link]
    return links


def _readonly_mounts(extra: tuple[Path, ...] = ()) -> list[str]:
    """--ro-bind each read-only path, its missing parents made 0755 first (bwrap would make them
    0700, root's, which an unprivileged user could not cross)."""
    args = []
    paths = [*_readonly_paths(), *extra]
    for parent in sorted({p for path in paths for p in path.parents if p not in (Path("/"), Path("/tmp"))},
                         key=lambda p: len(p.parts)):
        args += ["--perms", "0755", "--dir", str(parent)]
    for path in _readonly_paths():
        args += ["--ro-bind", str(path), str(path)]
    return args


def kernel_rlimits(limits: Limits) -> dict[str, int]:
    """A kernel process's rlimits (resource.RLIMIT_* names), soft and hard alike."""
    return {"RLIMIT_AS": limits.memory_mb * 2**20, "RLIMIT_NPROC": limits.processes,
            "RLIMIT_FSIZE": limits.file_mb * 2**20, "RLIMIT_NOFILE": limits.files, "RLIMIT_CORE": 0}


def kernel_prefix(sandbox: Sandbox) -> list[str]:
    """What the runner puts before the kernel's command: its own user, and its rlimits."""
    rlimits = ["prlimit", *(f"--{name[7:].lower()}={value}" for name, value in kernel_rlimits(sandbox.limits).items()),
               "--"]
    if not sandbox.uids:
        return rlimits
    kernel = sandbox.uids[1]
    return ["setpriv", f"--reuid={kernel}", f"--regid={kernel}", "--clear-groups", "--inh-caps=-all",
            "--ambient-caps=-all", "--no-new-privs", *rlimits]


def runner_env() -> dict[str, str]:
    """The runner's whole environment (bwrap --clearenv; a plain process gets this dict)."""
    return {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
            "JUPYTER_PLATFORM_DIRS": "1", "SSL_CERT_DIR": CERTIFICATE_DIR}


# httpx (0.28 and later, httpx/_config.py create_ssl_context) builds an SSL context for every
# client, and `httpx.post(...)` makes a client per call: from certifi's bundle (its default) that
# parses its 117 certificates, 15 ms of CPU each time, 2 s for one graded notebook of the
# harness lesson. With SSL_CERT_DIR it reads OpenSSL's hashed directory instead, lazily: 0.15 ms.
# Nothing in a sandbox can open a TLS connection (no network), so this changes no behaviour.
CERTIFICATE_DIR = ssl.get_default_verify_paths().openssl_capath


def kernel_env(sandbox: Sandbox, grader_env: dict[str, str]) -> dict[str, str]:
    """The kernel's environment: the runner's, the allowlisted variables of the grader's, and the
    relay's sockets. The runner adds HOME and the guard's settings."""
    env = {**runner_env(), **{name: grader_env[name] for name in ENVIRONMENT if name in grader_env},
           "OPENAI_API_KEY": PLACEHOLDER_API_KEY}
    if sandbox.isolated:
        env["COMPATLAB_RELAY"] = " ".join(f"{port}={BRIDGES_INSIDE}/{port}.sock" for port in sandbox.bridges)
    return env


def complete_job(sandbox: Sandbox, job: dict, grader_env: dict[str, str]) -> dict:
    """The job with this machine's part filled in: the kernel's prefix (its users, its rlimits),
    its environment (`grader_env`'s allowlisted variables, this machine's engines), the engines'
    ports, which the kernel must not take for itself, and the sandbox's own paced engine when
    the lesson uses one."""
    kernel = {"prefix": kernel_prefix(sandbox), "env": kernel_env(sandbox, grader_env),
              "reserved_ports": list(sandbox.bridges), "paced": None}
    if sandbox.isolated and uses_paced_engine(job):
        from compatlab.backends import ENGINES_VARIABLE

        kernel["paced"] = paced = paced_engine(sandbox)
        engines = json.loads(kernel["env"].get(ENGINES_VARIABLE) or "{}")
        kernel["env"][ENGINES_VARIABLE] = json.dumps({"paced": f"http://127.0.0.1:{paced['port']}", **engines})
        kernel["reserved_ports"].append(paced["port"])
    return {**job, "kernel": kernel}


# ---------------------------------------------------------------- one run


@dataclass
class Outcome:
    result: bytes  # what the runner wrote to stdout: its JSON result, at most the cap
    log: bytes  # its terminal output and the kernel's, at most Limits.log_bytes
    problem: str = ""  # why there may be no result: "" when the runner ended by itself in time


_runs = 0


@dataclass
class Booting:
    """A sandbox started before its job: bubblewrap, the runner (which imports, then waits for
    the job on stdin) and, warm, the kernel forked into it (in a thread: it waits for the
    sandbox to be up), which waits for the guard's settings before it answers anyone."""

    key: str  # what it was started for: another sandbox or kernel setup cannot use it
    uids: tuple[int, ...] | None
    process: subprocess.Popen
    group: "SandboxGroup | None"
    log_stream: object  # the runner's and the kernel's terminal output
    log_write: int | None  # its writing end, until the kernel has its copy
    fds: list[int]  # bubblewrap's info and the runner's ready pipes (read ends)
    forking: "threading.Thread | None" = None
    attach: dict | str = "not warm"  # the forked kernel ({"connection", "pid"}), or why there is none
    settings: int | None = None  # the kernel's guard settings pipe (writing end)

    def join(self) -> None:
        if self.forking is not None:
            self.forking.join()
            self.forking = None

    def close(self) -> bytes:
        """End it: whatever runs in it is killed, its users gone (or a note saying they are not)."""
        self.join()
        for fd in (*self.fds, self.log_write, self.settings):
            if fd is not None:
                os.close(fd)
        self.fds, self.log_write, self.settings = [], None, None
        self.log_stream.close()
        _end(self.process, self.group)
        if self.uids and not wait_for_users_to_leave(self.uids):
            return b"\n[compatlab grader: processes of this sandbox's users were still there 30 s after its end]\n"
        return b""


def _key(sandbox: Sandbox, kernel: dict, template) -> str:
    return json.dumps({"sandbox": asdict(sandbox), "kernel": kernel, "template": id(template)}, sort_keys=True)


def boot(sandbox: Sandbox, kernel: dict, template=None) -> Booting:
    """Start a sandbox for a job whose kernel settings are `kernel` (complete_job's), before the
    job itself is known: run() gives it the job. With a warm `template` (warm.Template; root
    only), the kernel is forked into it from there."""
    global _runs
    _runs += 1
    limits = sandbox.limits
    group = SandboxGroup.create(f"compatlab-{os.getpid()}-{_runs}", limits.memory_mb * 2**20,
                                limits.processes + 128) if sandbox.isolated else None
    (Path(sandbox.root) / "bridges" / str(sandbox.slot)).mkdir(parents=True, exist_ok=True)
    warm = bool(template and group and sandbox.uids)
    info_read, info_write = os.pipe() if warm else (None, None)
    ready_read, ready_write = os.pipe() if warm else (None, None)
    log_read, log_write = os.pipe()
    seccomp_fd = seccomp.descriptor() if sandbox.isolated else None
    argv = runner_command(sandbox, seccomp_fd, info_write, ready_write, kernel.get("paced"))
    if group:  # the sandbox's first process joins the group before it becomes bwrap
        files = group.procs_files()
        argv = ["/bin/sh", "-c", 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; '
                'n=$((n-1)); done; exec "$@"', "sh", str(len(files)), *files, *argv]
    passed = tuple(fd for fd in (seccomp_fd, info_write, ready_write) if fd is not None)
    # Popen in the calling thread: bubblewrap dies with it (--die-with-parent)
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_write,
                               env=runner_env(), cwd="/", start_new_session=True, pass_fds=passed)
    for fd in passed:
        os.close(fd)  # the sandbox has its own copies
    booting = Booting(_key(sandbox, kernel, template), sandbox.uids, process, group,
                      os.fdopen(log_read, "rb", buffering=0), log_write,
                      [fd for fd in (info_read, ready_read) if fd is not None])
    if warm:
        settings_read, booting.settings = os.pipe()

        def fork() -> None:
            try:
                booting.attach = template.kernel_in(info_read, ready_read, log_write, group.procs_files(),
                                                    sandbox.uids[1], kernel_rlimits(limits), kernel["env"],
                                                    kernel["reserved_ports"], settings_read)
            finally:
                os.close(settings_read)  # the kernel has its copy

        booting.forking = threading.Thread(target=fork, name="compatlab warm kernel", daemon=True)
        booting.forking.start()
    return booting


class Spare:
    """One sandbox kept booting ahead, for a worker that grades one notebook after another: the
    next student's starts (a fresh one, after the last one is wholly gone) while nbgrader records
    the last one's grades and prepares the next notebook, instead of after. Only a job with the
    same sandbox and kernel settings takes it; another gets a fresh sandbox, and the spare ends."""

    def __init__(self) -> None:
        self.booting: Booting | None = None

    def take(self, sandbox: Sandbox, kernel: dict, template) -> Booting | None:
        booting, self.booting = self.booting, None
        if booting is None:
            return None
        if booting.key == _key(sandbox, kernel, template) and booting.process.poll() is None:
            return booting
        booting.close()
        return None

    def refill(self, sandbox: Sandbox, kernel: dict, template) -> None:
        self.discard()
        try:
            self.booting = boot(sandbox, kernel, template)
        except Exception:  # noqa: BLE001 -- the next job boots its own, and says why if it cannot
            self.booting = None

    def discard(self) -> None:
        if self.booting is not None:
            self.booting.close()
            self.booting = None


def run(sandbox: Sandbox, job: dict, template=None, spare: Spare | None = None) -> Outcome:
    """Give a sandbox the job, and read what comes out, within the time limit: the `spare` one
    when it was started for the same settings, else a new one (boot). With a `spare`, another
    sandbox starts for the next job once this one is wholly gone. Whatever happens, nothing of
    this sandbox outlives this call."""
    limits, kernel = sandbox.limits, job["kernel"]
    booting = (spare and spare.take(sandbox, kernel, template)) or boot(sandbox, kernel, template)
    deadline = time.monotonic() + limits.notebook_timeout + 120  # the runner keeps its own limit first
    log = b""
    try:
        booting.join()
        if booting.settings is not None:
            attach = booting.attach
            if isinstance(attach, dict):  # the kernel answers once it has the guard's settings
                try:
                    os.write(booting.settings, json.dumps(job["guard"]).encode())
                except OSError as exc:  # it is gone: the runner finds out, and starts one of its own
                    attach = f"it ended before its start ({exc.strerror})"
            if isinstance(attach, dict):
                job = {**job, "kernel": {**kernel, "attach": attach}}
            else:
                log += f"[compatlab grader: no warm kernel ({attach}); the runner starts one]\n".encode()
            os.close(booting.settings)
            booting.settings = None
        os.close(booting.log_write)
        booting.log_write = None
        data = json.dumps(job).encode()
        result_cap = 2 * limits.notebook_output_bytes + 2 * len(data) + 2**20
        result, more, problem = exchange(booting.process, booting.log_stream, data, deadline, result_cap,
                                         limits.log_bytes)
        log += more
    finally:
        log += booting.close()
    if not problem and booting.group and booting.group.out_of_memory():
        log += f"\n[compatlab grader: the sandbox reached its {limits.memory_mb} MB memory limit]\n".encode()
    if spare is not None:
        spare.refill(sandbox, kernel, template)
    return Outcome(result, log, problem)


def exchange(process: subprocess.Popen, log_stream, job: bytes, deadline: float, result_cap: int,
             log_cap: int) -> tuple[bytes, bytes, str]:
    """Write the job, read stdout and the log stream, each capped; stop at the deadline."""
    selector = selectors.DefaultSelector()
    for stream in (process.stdin, process.stdout, log_stream):
        os.set_blocking(stream.fileno(), False)
    selector.register(process.stdin, selectors.EVENT_WRITE)
    selector.register(process.stdout, selectors.EVENT_READ)
    selector.register(log_stream, selectors.EVENT_READ)
    result, log, sent, dropped = bytearray(), bytearray(), 0, 0
    ended_at = None
    while selector.get_map():
        now = time.monotonic()
        if now > deadline:
            return bytes(result), bytes(log), "the sandbox did not finish in time and was stopped"
        if process.poll() is not None:  # the runner is gone: its leftovers get a moment, no more
            ended_at = ended_at or now
            if now - ended_at > 2:
                break
        for key, _ in selector.select(timeout=0.5):
            stream = key.fileobj
            if stream is process.stdin:
                try:
                    sent += os.write(stream.fileno(), job[sent:sent + 65536])
                except BlockingIOError:
                    continue
                except BrokenPipeError:  # the runner stopped reading; its result or its end says why
                    sent = len(job)
                if sent >= len(job):
                    selector.unregister(stream)
                    stream.close()
                continue
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                selector.unregister(stream)
            elif stream is process.stdout:
                result += chunk
                if len(result) > result_cap:
                    return b"", bytes(log), f"the sandbox's result was larger than {result_cap:,} bytes"
            else:
                keep = max(0, log_cap - len(log))
                log += chunk[:keep]
                dropped += len(chunk) - min(keep, len(chunk))
    if dropped:
        log += f"\n[compatlab grader: {dropped:,} more bytes of output dropped]\n".encode()
    return bytes(result), bytes(log), ""


def _end(process: subprocess.Popen, group: SandboxGroup | None) -> None:
    """Kill whatever is left: bwrap takes its PID namespace with it; the group catches the rest."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    for stream in (process.stdin, process.stdout):
        try:
            stream.close()
        except (OSError, ValueError):
            pass
    if group:
        group.remove()


def wait_for_users_to_leave(uids: tuple[int, ...], timeout: float = 30.0) -> bool:
    """Wait until no task of these users is left, dying or dead-but-unreaped. The process limit
    (RLIMIT_NPROC) counts a user's tasks machine-wide, and the next student of this worker runs
    as the same users: a kernel with hundreds of threads still being torn down would leave the
    next kernel no room to start ("can't start new thread"). False if some are still there."""
    deadline = time.monotonic() + timeout
    while True:
        if not any(_real_uid(pid) in uids for pid in os.listdir("/proc") if pid.isdigit()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _real_uid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None
