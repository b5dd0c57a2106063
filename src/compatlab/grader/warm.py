"""Warm kernels: each student's kernel forked from a pre-imported process, inside that
student's own fresh sandbox.

Before it runs a line of the learner's, a graded notebook's kernel spends seconds importing:
ipykernel, pandas, matplotlib (and building its font list), the SDKs. Serial nbgrader pays that
for every notebook; here each worker pays it once. A worker starts a *template*: a process of
its own (root, the runner's environment, never any student code) that imports those modules
and then does one thing, on the worker's request only: fork a kernel into a given sandbox. It
knows nothing of a run (engines, relays): each kernel gets its whole environment when forked,
so a worker starts its template first thing, and its imports overlap everything else.

For each student the worker starts the sandbox exactly as before (sandbox.py: bubblewrap's
fresh namespaces and tmpfs, the control group) and waits for the runner inside to be up. Then
the template forks a child that

1. joins the sandbox's control group and its namespaces (mount, PID, network, IPC, UTS,
   cgroup), and forks once more, so that the kernel is a process of the sandbox's PID namespace,
   reaped by bubblewrap's init and killed with the sandbox;
2. becomes the kernel's user (no groups, no capabilities, no_new_privs), takes the kernel's
   rlimits and the sandbox's seccomp filter (seccomp.py), sets the kernel's environment;
3. runs the grading kernel (kernel.py) from the modules already in memory.

No process, file or namespace of one student reaches the next: each kernel lives in its
student's fresh sandbox, which goes whole at the end. No module state does either: a kernel's
changes to its memory are its copy's, and the template never reads anything a sandbox wrote.
The only way in is the worker's socket, which no sandbox sees.

Root only (setns needs it); elsewhere, and whenever any step fails, the runner starts its
own kernel as before ("cold"), which is slower and exactly as isolated.
"""

import ctypes
import json
import multiprocessing.util
import os
import random
import resource
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from compatlab.grader import kernel, seccomp
from compatlab.grader.kernel import SETTINGS_VARIABLE

# what the lessons import, besides the kernel itself: a module missing here just stays cold.
# Not ollama (60 ms in the kernel): its import makes a client from OLLAMA_HOST, which only
# the kernel's own environment has.
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "matplotlib_inline.backend_inline", "compatlab.grader.kernel",
           "compatlab.grader.guard", "compatlab.grader.relay", "numpy", "pandas", "matplotlib", "matplotlib.pyplot",
           "httpx", "openai", "jsonschema", "fastapi", "fastapi.responses", "uvicorn",
           "compatlab.backends", "compatlab.process", "compatlab.lessonkit", "compatlab.traces", "compatlab.selfcheck")
NAMESPACES = (("ipc", 0x08000000), ("uts", 0x04000000), ("net", 0x40000000), ("cgroup", 0x02000000),
              ("pid", 0x20000000), ("mnt", 0x00020000))  # CLONE_NEW*; the mount namespace last
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 4, 38, 22, 2
PR_SET_CHILD_SUBREAPER = 36
KERNEL_HOME = "/tmp/kernel"  # the kernel's working folder, $HOME and $TMPDIR, in the sandbox's tmpfs
START_SECONDS = 30
SETTINGS_FD = 3  # in a warm kernel: where the guard's settings arrive

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


# ---------------------------------------------------------------- the worker's side

_template: "Template | None" = None  # this worker's


def use(env: dict[str, str]) -> None:
    """Have this worker's template running with `env` (the runner's; each kernel gets its own
    when forked): it starts now, and imports while the worker does other work. One that died,
    or runs with another environment, is replaced."""
    global _template
    if _template and _template.env == env and _template.process.poll() is None:
        return
    if _template:
        _template.stop()
    _template = Template(env)
    # a pool's worker process leaves through os._exit, which skips atexit: its finalizers run
    multiprocessing.util.Finalize(_template, _template.stop, exitpriority=10)


def current() -> "Template | None":
    """This worker's template, if `use` started one."""
    return _template


class Template:
    """The worker's handle on its template process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen([sys.executable, "-I", "-m", "compatlab.grader.warm", str(theirs.fileno())],
                                        env={**env, "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
                                        cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        pass_fds=(theirs.fileno(),), start_new_session=True)
        theirs.close()
        self.ready: bool | None = None  # known at the first kernel: the imports overlap other work

    def _reply(self, timeout: float) -> dict:
        if not select.select([self.socket], [], [], timeout)[0]:
            return {"error": "the template did not answer"}
        data = self.socket.recv(65536)
        return json.loads(data) if data else {"error": "the template is gone"}

    def kernel_in(self, info_fd: int, ready_fd: int, log_fd: int, cgroup_procs: list[str], uid: int,
                  rlimits: dict[str, int], env: dict[str, str], reserved_ports: list[int],
                  settings_fd: int) -> dict | str:
        """Fork a kernel into the sandbox bubblewrap is starting: what the runner needs to attach
        to it ({"connection": …, "pid": …}), or why there is none (a string).

        `info_fd`: bubblewrap's --info-fd, which says which namespaces it made; `ready_fd`: the
        runner's, closed once the runner is up (so the sandbox's mounts are all in place);
        `log_fd`: where the kernel's terminal output goes (the runner's log); `settings_fd`: where
        the kernel reads the guard's settings, once its job is known (kernel.py), before it answers."""
        if self.ready is None:
            self.ready = self._reply(START_SECONDS * 4).get("ready", False)
        if not self.ready:
            return "the template could not load its modules"
        info = _read_all(info_fd, START_SECONDS)
        if _read_all(ready_fd, START_SECONDS) is None or info is None:
            return "the sandbox did not start in time"
        try:
            namespaces = json.loads(info)
            sandbox_pid = int(namespaces.pop("child-pid"))
        except (ValueError, KeyError, TypeError):
            return "bubblewrap did not say which namespaces it made"
        connection = connection_info(reserved_ports)
        request = {"sandbox_pid": sandbox_pid, "namespaces": namespaces, "cgroup_procs": cgroup_procs, "uid": uid,
                   "rlimits": rlimits, "env": env, "connection": connection}
        try:
            socket.send_fds(self.socket, [json.dumps(request).encode()], [log_fd, settings_fd])
            reply = self._reply(START_SECONDS)
        except (OSError, ValueError) as exc:
            reply = {"error": f"the template failed: {exc}"}
        if "pid" not in reply:
            return str(reply.get("error", "no answer"))
        return {"connection": connection, "pid": reply["pid"]}

    def stop(self) -> None:
        self.socket.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _read_all(fd: int, timeout: float) -> bytes | None:
    """Everything until the writer closes `fd`; None if that takes longer than `timeout`."""
    data, deadline = b"", time.monotonic() + timeout
    while select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            return data
        data += chunk
    return None


def connection_info(reserved_ports: list[int]) -> dict:
    """Where the kernel listens in the sandbox's own network namespace, where nothing else but
    the engines' relay (`reserved_ports`) does: five ports below the ephemeral range (see
    execute._free_port), and a fresh key."""
    low = ephemeral_low()
    ports = set()
    while len(ports) < 5:
        port = secrets.randbelow(low - 10_000) + 10_000
        if port not in reserved_ports:
            ports.add(port)
    names = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
    return {**dict(zip(names, sorted(ports))), "ip": "127.0.0.1", "transport": "tcp",
            "key": secrets.token_hex(32), "signature_scheme": "hmac-sha256", "kernel_name": ""}


def ephemeral_low() -> int:
    """The lowest port Linux hands out as a connection's source port."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


# ---------------------------------------------------------------- the template


def serve(conn: socket.socket) -> None:
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 -- a module that cannot load here is imported cold, in the kernel
            pass
    import matplotlib.font_manager  # noqa: F401 -- builds the font list once, not per student
    # A kernel's parent (our child) exits at once, and an orphan goes to the reaper of its
    # parent's PID namespace, the host's, which may reap it late (its user's processes count
    # until then: sandbox.wait_for_users_to_leave). As a subreaper the template adopts its
    # kernels instead, and with SIGCHLD ignored the system reaps them the moment they die.
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    # fork copies only the calling thread: a thread some import started would leave its locks held
    conn.send(json.dumps({"ready": threading.active_count() == 1}).encode())
    while True:
        message, fds, _, _ = socket.recv_fds(conn, 65536, 2)
        if not message:  # the worker is done: nothing here to tidy, so no interpreter teardown
            os._exit(0)
        try:
            if len(fds) != 2:
                raise RuntimeError("a kernel needs its log and its settings' pipe")
            reply = {"pid": _fork_kernel(json.loads(message), fds[0], fds[1], conn)}
        except Exception as exc:  # noqa: BLE001 -- the worker falls back to a cold kernel
            reply = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        finally:
            for fd in fds:
                os.close(fd)
        conn.send(json.dumps(reply).encode())


def _fork_kernel(request: dict, log_fd: int, settings_fd: int, conn: socket.socket) -> int:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        code = 70
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the kernel's children are its own to wait for
            os.close(read)
            conn.close()
            _enter(request)
            if os.fork() == 0:  # the PID namespace applies to children only
                _become_kernel(request, log_fd, settings_fd, write)
            code = 0
        except BaseException as exc:  # noqa: BLE001 -- said on the log, the worker goes cold
            os.write(log_fd, f"[compatlab grader: warm kernel: {exc}]\n".encode(errors="replace"))
        finally:
            os._exit(code)
    os.close(write)
    try:
        answer = b""
        while select.select([read], [], [], START_SECONDS)[0]:
            chunk = os.read(read, 64)
            if not chunk:
                break
            answer += chunk
    finally:
        os.close(read)
        try:
            os.waitpid(child, 0)
        except ChildProcessError:  # SIGCHLD is ignored: reaped already
            pass
    if not answer.isdigit():
        raise RuntimeError("the kernel did not start")
    return int(answer)


def _enter(request: dict) -> None:
    """Join the sandbox: its control group, then its namespaces, checked against what
    bubblewrap said they are (a PID reused by another process is refused)."""
    for path in request["cgroup_procs"]:
        with open(path, "w") as handle:
            handle.write(str(os.getpid()))
    target = request["sandbox_pid"]
    handles = []
    for name, flag in NAMESPACES:
        expected = request["namespaces"].get(f"{name}-namespace")
        if expected is None:
            continue
        fd = os.open(f"/proc/{target}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        if os.fstat(fd).st_ino != expected:
            raise RuntimeError(f"the sandbox's {name} namespace is not the one bubblewrap made")
        handles.append((fd, flag))
    for fd, flag in handles:
        _check(_libc.setns(fd, flag), "setns")
        os.close(fd)
    os.chdir("/")


def _become_kernel(request: dict, log_fd: int, settings_fd: int, report_fd: int) -> None:
    """In the sandbox's PID namespace: drop everything, then run the kernel. Never returns."""
    code = 1
    try:
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.write(report_fd, str(os.getpid()).encode())
        os.dup2(settings_fd, SETTINGS_FD)  # the one descriptor kept: the kernel reads it, then closes it
        os.closerange(SETTINGS_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])  # the template's, the worker's
        for limit, value in request["rlimits"].items():
            resource.setrlimit(getattr(resource, limit), (value, value))
        uid = request["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # every capability goes with root
        _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")  # its own /proc files stay its own
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _load_seccomp()
        os.makedirs(KERNEL_HOME, mode=0o700)
        os.chdir(KERNEL_HOME)
        connection = os.path.join(KERNEL_HOME, ".kernel.json")
        with open(os.open(connection, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            json.dump(request["connection"], handle)
        os.environ.clear()
        os.environ.update({**request["env"], "HOME": KERNEL_HOME, "TMPDIR": KERNEL_HOME,
                           SETTINGS_VARIABLE: str(SETTINGS_FD)})
        random.seed()  # a fresh seed, as a fresh interpreter has
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        # as nbclient starts a kernel: its history in memory, not in a file
        sys.argv = ["compatlab-kernel", "-f", connection, "--HistoryManager.hist_file=:memory:"]
        kernel.main()
        code = 0
    except BaseException as exc:  # noqa: BLE001
        try:
            os.write(2, f"[compatlab grader: warm kernel: {exc}]\n".encode(errors="replace"))
        except OSError:
            pass
    finally:
        os._exit(code)


def _load_seccomp() -> None:
    code = seccomp.program()
    if code is None:
        return
    count = len(code) // 8
    filters = (_SockFilter * count).from_buffer_copy(code)
    program = _SockFprog(count, filters)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0), "seccomp")


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
