"""The sandbox one submission runs in: who runs inside it, with what rights and limits, and the
bounded exchange with the runner (root writes a job in, reads a capped result out, in time)."""

import json
import os
import platform
import subprocess
import sys
import time

import pytest

from compatlab.grader import sandbox, warm
from compatlab.grader.cgroups import SandboxGroup

PROBE = '''
import ctypes, json, os, resource, sys
libc = ctypes.CDLL(None, use_errno=True)
def syscall(number):
    # arguments that would otherwise succeed or fail on their own: add_key("user", "k", "v") into
    # the user keyring, unshare(0), and so on; only EPERM says the filter refused the call
    result = libc.syscall(number, b"user", b"compatlab", b"v", 1, -4)
    return "EPERM" if result == -1 and ctypes.get_errno() == 1 else f"allowed ({result}, errno {ctypes.get_errno()})"
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
def command(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return b""
runner = next(pid for pid in os.listdir("/proc") if pid.isdigit() and b"compatlab.grader.runner" in command(pid).split(b"\\0")
              and not command(pid).startswith(b"bwrap"))
def attempt(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return type(exc).__name__
from ipykernel.kernelapp import IPKernelApp
app = IPKernelApp.instance()
runner_status = dict(line.split(":", 1) for line in open(f"/proc/{runner}/status"))
paced_url = json.loads(os.environ.get("COMPATLAB_ENGINES") or "{}").get("paced", "")
paced = next(pid for pid in os.listdir("/proc") if pid.isdigit() and b"engine\\0serve" in command(pid)
             and command(pid).split(b"\\0")[0].endswith(b"python"))
paced_status = dict(line.split(":", 1) for line in open(f"/proc/{paced}/status"))
paced_limits = [line for line in open(f"/proc/{paced}/limits") if line.startswith("Max address space")]
print("PROBE " + json.dumps({
    "uid": os.getuid(), "runner_uid": int(runner_status["Uid"].split()[0]),
    "caps": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "runner_caps": runner_status["CapEff"].strip(),
    "signal_runner": attempt(lambda: os.kill(int(runner), 0)),
    "runner_environ": attempt(lambda: open(f"/proc/{runner}/environ").read()),
    "address_space": resource.getrlimit(resource.RLIMIT_AS)[0], "processes": resource.getrlimit(resource.RLIMIT_NPROC)[0],
    "file_size": resource.getrlimit(resource.RLIMIT_FSIZE)[0], "core": resource.getrlimit(resource.RLIMIT_CORE)[0],
    "tmp_bytes": os.statvfs("/tmp").f_blocks * os.statvfs("/tmp").f_frsize,
    "files": resource.getrlimit(resource.RLIMIT_NOFILE),
    "refused_calls": {name: syscall(number) for name, number in SYSCALLS.items()},
    "cwd": os.getcwd(), "home": os.environ["HOME"], "preloaded": "pandas" in sys.modules,
    "left_before": [path for path in ("/tmp/left-before", os.path.expanduser("~/left-before")) if os.path.exists(path)],
    "child_status": __import__("subprocess").run(["sh", "-c", "exit 3"]).returncode,
    "seccomp": status["Seccomp"].strip(), "groups": status["Groups"].strip(), "gid": os.getgid(),
    "visible_processes": len([pid for pid in os.listdir("/proc") if pid.isdigit()]),
    "interfaces": sorted(line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]),
    "runner_home": [name for name in os.listdir("/tmp") if name.startswith("runner-")],
    "cgroup": open("/proc/self/cgroup").read() == open(f"/proc/{runner}/cgroup").read(),
    "kernel_ports": [getattr(app, name + "_port") for name in ("shell", "iopub", "stdin", "control", "hb")],
    "ephemeral_low": int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0]),
    "paced": {"url": paced_url, "settings": __import__("httpx").get(paced_url + "/lab/status").json()["settings"],
              "uid": int(paced_status["Uid"].split()[0]), "caps": paced_status["CapEff"].strip(),
              "no_new_privs": paced_status["NoNewPrivs"].strip(), "address_space": int(paced_limits[0].split()[3]),
              "cgroup": open(f"/proc/{paced}/cgroup").read() == open(f"/proc/{runner}/cgroup").read()},
    "client_certificates": __import__("httpx").Client()._transport._pool._ssl_context.cert_store_stats()["x509"]}))
'''


def probe_source() -> str:
    from compatlab.grader.seccomp import TABLES

    _, calls = TABLES[platform.machine()]
    return f"SYSCALLS = {calls!r}\n" + PROBE


def job(box: sandbox.Sandbox, source: str) -> dict:
    limits = box.limits
    return {
        "cells": [{"index": 0, "source": source, "role": "student", "label": "cell 1"}],
        "limits": {name: getattr(limits, name) for name in ("cell_timeout", "notebook_timeout", "cell_output_bytes",
                                                            "notebook_output_bytes", "message_bytes")},
        "kernel": {"prefix": sandbox.kernel_prefix(box), "env": sandbox.kernel_env(box, {}), "reserved_ports": []},
        "guard": {"roles": {}, "watch": []}}


def job_with_paced(box: sandbox.Sandbox, source: str) -> dict:
    """As a lesson whose own cells use the paced engine: the sandbox starts one of its own."""
    lesson = {"index": 0, "source": 'ENGINES = lab_engines(("paced",))', "role": "lesson", "label": "setup"}
    completed = sandbox.complete_job(box, {**job(box, source), "cells": [lesson]}, {})
    return {**completed, "cells": job(box, source)["cells"]}


LEAVE = "for path in ('/tmp/left-before', __import__('os').path.expanduser('~/left-before')): open(path, 'w').write('x')"


@pytest.fixture(scope="module", params=["cold", "warm", "spare"])
def probed(request, tmp_path_factory):
    """The probe run in a kernel the runner starts (cold), in one forked from a warm template
    (warm.py), and in a warm one started ahead, as a pool's worker does, while the sandbox
    before it was graded (sandbox.Spare): all three must be the same prisoner."""
    assert os.geteuid() == 0, "CI grades as root, as the README recommends; these checks need it"
    assert not sandbox.unavailable(), sandbox.unavailable()
    box = sandbox.prepare(tmp_path_factory.mktemp("box"), sandbox.Limits(cell_timeout=60), True)
    box.slot, lock = sandbox.claim_slot(sandbox.Path(box.root))
    box.uids, users = sandbox.claim_users()
    template = warm.Template(sandbox.kernel_env(box, {})) if request.param != "cold" else None
    spare = sandbox.Spare() if request.param == "spare" else None
    try:
        if spare:  # a student before, who leaves files; the probe's sandbox boots as theirs ends
            before = sandbox.run(box, job_with_paced(box, LEAVE), template, spare)
            assert json.loads(before.result)["cells"][0]["outputs"] == [], before.log[-3000:]
            assert spare.booting is not None and spare.booting.process.poll() is None
        outcome = sandbox.run(box, job_with_paced(box, probe_source()), template, spare)
    finally:
        if spare:
            spare.discard()
        if template:
            template.stop()
    result = json.loads(outcome.result)
    assert "error" not in result, (result, outcome.log[-3000:])
    text = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    line = next((line for line in text.splitlines() if line.startswith("PROBE ")), None)
    assert line, (result, outcome.log[-3000:].decode(errors="replace"))
    found = json.loads(line[len("PROBE "):])
    # the warm kernel really is the template's child: pandas came with it, unimported by the probe
    assert found["preloaded"] == (request.param != "cold"), outcome.log[-3000:]
    return box, found


def test_a_sandbox_started_ahead_is_fresh_and_serves_only_its_own_settings(probed):
    box, found = probed
    assert found["left_before"] == []  # with "spare", the student before wrote both
    spare = sandbox.Spare()
    kernel = job(box, "")["kernel"]
    spare.refill(box, kernel, None)
    booting = spare.booting
    other = {**kernel, "env": {**kernel["env"], "OLLAMA_HOST": "http://127.0.0.1:9"}}
    # a job with other settings (here another engine) gets a sandbox of its own; the spare ends
    assert spare.take(box, other, None) is None and spare.booting is None
    assert booting.process.poll() is not None
    spare.refill(box, kernel, None)
    booting = spare.booting
    assert spare.take(box, kernel, None) is booting
    assert booting.close() == b"" and booting.process.poll() is not None


def test_the_sandboxs_own_paced_engine_runs_as_the_kernel_does(probed):
    """The runner starts it before the notebook runs; it has the kernel's user, rights and limits."""
    box, found = probed
    paced = found["paced"]
    assert paced["url"] == f"http://127.0.0.1:{sandbox.PACED_PORT}"  # the sandbox's own loopback
    assert (paced["settings"]["profile"], paced["settings"]["tokens_per_second"], paced["settings"]["load_ms"]) \
        == ("ollama", 60.0, 0.0)
    assert paced["uid"] == found["uid"] and paced["caps"] == found["caps"] == "0000000000000000"
    assert paced["no_new_privs"] == "1" and paced["address_space"] == found["address_space"] and paced["cgroup"]


def test_only_a_lesson_that_uses_the_paced_engine_gets_one_started(tmp_path):
    box = sandbox.Sandbox(str(tmp_path), bridges=(11436, 40000))
    lesson = {"index": 0, "source": 'ENGINES = lab_engines(("ollama", "paced"))', "role": "lesson", "label": "setup"}
    learner = {**lesson, "role": "student"}
    kernel = sandbox.complete_job(box, {"cells": [lesson, learner]}, {"COMPATLAB_ENGINES": '{"ollama": "u"}'})["kernel"]
    # the next port up where a relayed engine has 11436; the kernel may not take it
    assert kernel["paced"]["port"] == 11437 and kernel["reserved_ports"] == [11436, 40000, 11437]
    assert json.loads(kernel["env"]["COMPATLAB_ENGINES"]) == {"ollama": "u", "paced": "http://127.0.0.1:11437"}
    for cells in ([learner], [{**lesson, "source": "ENGINES = lab_engines()"}]):  # a learner's cells decide nothing
        kernel = sandbox.complete_job(box, {"cells": cells}, {"COMPATLAB_ENGINES": '{"ollama": "u"}'})["kernel"]
        assert kernel["paced"] is None and kernel["env"]["COMPATLAB_ENGINES"] == '{"ollama": "u"}'
    unsandboxed = sandbox.Sandbox(str(tmp_path), isolated=False)
    assert sandbox.complete_job(unsandboxed, {"cells": [lesson]}, {})["kernel"]["paced"] is None


def test_the_kernel_and_the_runner_are_two_users_of_their_own(probed):
    box, found = probed
    assert (found["runner_uid"], found["uid"]) == box.uids and 0 not in box.uids


def test_the_kernel_has_no_rights_and_cannot_reach_the_runner(probed):
    _, found = probed
    assert found["caps"] == "0000000000000000" and found["no_new_privs"] == "1"
    assert found["groups"] == "" and found["gid"] == found["uid"]
    assert found["signal_runner"] == "PermissionError" and found["runner_environ"] == "PermissionError"
    # the runner keeps exactly setuid, setgid and kill: enough to start and stop the kernel
    assert int(found["runner_caps"], 16) == (1 << 7) | (1 << 6) | (1 << 5)


def test_the_kernel_runs_under_the_limits(probed):
    box, found = probed
    limits = box.limits
    assert found["address_space"] == limits.memory_mb * 2**20 and found["processes"] == limits.processes
    assert found["file_size"] == limits.file_mb * 2**20 and found["core"] == 0
    assert found["tmp_bytes"] == limits.tmp_mb * 2**20  # the only writable place, and it is small
    assert found["cwd"].startswith("/tmp/") and found["home"] == found["cwd"]
    # a process it starts is its own to wait for (the template ignores SIGCHLD; the kernel must not)
    assert found["child_status"] == 3


def test_the_kernel_cannot_raise_its_open_file_limit_or_use_refused_calls(probed):
    box, found = probed
    assert found["files"] == [box.limits.files, box.limits.files]
    # the keyrings would carry data from one student's sandbox to the next on the same worker
    assert found["refused_calls"] and set(found["refused_calls"].values()) == {"EPERM"}, found["refused_calls"]
    assert found["seccomp"] == "2"  # a filter, inherited by every process the kernel starts


def test_the_kernel_lives_in_the_runners_sandbox(probed):
    # the sandbox's PID namespace (a handful of processes: bwrap's init, the runner, the kernel),
    # its network (loopback only), its tmpfs (the runner's folder is there), and its control
    # group (so the sandbox's memory and process limits count the kernel)
    _, found = probed
    assert found["visible_processes"] <= 5 and found["interfaces"] == ["lo"], found
    assert len(found["runner_home"]) == 1 and found["cgroup"]


def test_the_kernel_listens_below_the_ephemeral_ports(probed):
    # a port from the ephemeral range can be handed to a client connection's source while the
    # kernel is still importing, and the kernel then dies on "Address in use"
    _, found = probed
    assert all(port < found["ephemeral_low"] for port in found["kernel_ports"]), (found["kernel_ports"], found["ephemeral_low"])
    assert len(set(found["kernel_ports"])) == 5


def test_an_http_client_in_the_kernel_parses_no_certificate_bundle(probed):
    # httpx builds an SSL context for every client (and `httpx.post` makes a client per call);
    # from certifi's bundle that is some 150 certificates parsed each time, 15 ms of CPU, paid
    # hundreds of times per notebook. With SSL_CERT_DIR set (sandbox.runner_env), OpenSSL reads
    # its hashed directory only when a certificate is needed, and a sandbox never needs one
    _, found = probed
    assert found["client_certificates"] == 0, f"a new httpx client loaded {found['client_certificates']} certificates"


def test_the_group_limits_the_whole_sandbox_and_goes_away():
    group = SandboxGroup.create(f"compatlab-test-{os.getpid()}", 64 * 2**20, 16)
    assert group is not None, "no control group could be made here, as root"
    hog = subprocess.Popen(["/bin/sh", "-c", f'echo $$ > "{group.procs_files()[0]}"; '
                            + " ".join(f'echo $$ > "{f}";' for f in group.procs_files()[1:])
                            + f' exec {sys.executable} -c "x = bytearray(200 * 2**20); x[::4096] = b\\"1\\" * len(x[::4096])"'])
    assert hog.wait(30) != 0 and group.out_of_memory()  # 200 MB in a 64 MB group: killed
    group.remove()
    assert not any(folder.exists() for folder in group.folders)


def run(code: str, job: bytes = b"", deadline: float = 20, result_cap: int = 2**20, log_cap: int = 4096):
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    start = time.monotonic()
    try:
        return (*sandbox.exchange(process, process.stderr, job, time.monotonic() + deadline, result_cap, log_cap),
                time.monotonic() - start)
    finally:
        process.kill()
        process.wait()


def test_the_whole_job_goes_in_and_the_result_comes_out():
    payload = os.urandom(3 * 2**20)
    result, log, problem, _ = run("import sys; data = sys.stdin.buffer.read(); print(len(data))", payload)
    assert problem == "" and result.strip() == str(len(payload)).encode()


def test_a_result_over_the_cap_is_refused():
    result, _, problem, _ = run("import sys; sys.stdout.write('x' * 5_000_000)")
    assert result == b"" and problem == f"the sandbox's result was larger than {2**20:,} bytes"


def test_a_sandbox_that_does_not_finish_is_stopped_at_the_deadline():
    _, _, problem, seconds = run("import time; time.sleep(60)", deadline=1)
    assert problem == "the sandbox did not finish in time and was stopped" and seconds < 5


def test_terminal_output_is_capped_and_says_so():
    _, log, problem, _ = run("import sys; sys.stderr.write('e' * 100_000)")
    assert problem == "" and log.startswith(b"e" * 4096) and b"95,904 more bytes of output dropped" in log


def test_the_shared_engines_run_as_a_user_of_their_own():
    from compatlab.process import EngineProcess

    prefix = sandbox.engine_prefix()
    assert prefix, "as root, grading sandboxes its engines too"
    with EngineProcess("--profile", "vllm", fast=True, prefix=tuple(prefix)) as engine:
        import httpx

        assert httpx.get(engine.url + "/v1/models", timeout=5).status_code == 200
        owners = {os.stat(f"/proc/{pid}").st_uid for pid in descendants(engine.process.pid)
                  if open(f"/proc/{pid}/cmdline", "rb").read().startswith(sys.executable.encode())}
        assert owners == {sandbox.ENGINE_UID}  # the engine itself, not bwrap around it


def descendants(root: int) -> list[int]:
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(pid)] = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def test_a_relay_takes_no_more_connections_than_its_limit(tmp_path):
    import socket

    upstream = socket.create_server(("127.0.0.1", 0))
    path = str(tmp_path / "engine.sock")
    relay = subprocess.Popen([sys.executable, "-m", "compatlab.grader.relay", "out", "--limit=3",
                              f"{upstream.getsockname()[1]}={path}"], stdout=subprocess.PIPE, text=True)
    try:
        assert relay.stdout.readline().strip() == "ready"

        def connect() -> socket.socket:
            client = socket.socket(socket.AF_UNIX)
            client.connect(path)
            client.settimeout(5)
            return client

        engine_side = []  # kept open: a connection the engine closes frees its place at the relay

        def relayed(client: socket.socket) -> bool:
            """Does the relay pass this connection on (or close it: b"" at once)?"""
            client.sendall(b"ping")
            accepted, _ = upstream.accept()
            engine_side.append(accepted)
            accepted.settimeout(5)
            return accepted.recv(4) == b"ping"

        held = [connect() for _ in range(3)]
        assert all(relayed(client) for client in held)
        refused = connect()
        assert refused.recv(1) == b""  # the fourth is closed at once
        held.pop().close()
        time.sleep(0.2)
        assert relayed(connect())  # room again
    finally:
        relay.kill()
        upstream.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="users per slot exist only when grading as root")
def test_two_grading_runs_at_once_never_share_a_slots_users():
    # an instructor's grade and a learner's check on one machine: each run has its own relays,
    # but the users (and their process budget) are the machine's
    first, held = sandbox.claim_users()
    second, also_held = sandbox.claim_users()
    assert first and second and not set(first) & set(second)
    held.close()
    again, held = sandbox.claim_users()
    assert again == first  # a worker's users are free again once it ends
    held.close()
    also_held.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="users per slot exist only when grading as root")
def test_the_next_sandbox_waits_until_the_last_ones_users_are_gone():
    uid = sandbox.FIRST_UID + 2 * sandbox.SLOTS + 7  # a user no slot uses
    lingering = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "sleep", "30"])
    try:
        time.sleep(0.3)
        assert sandbox.wait_for_users_to_leave((uid,), timeout=0.5) is False
    finally:
        lingering.kill()
        lingering.wait()
    assert sandbox.wait_for_users_to_leave((uid,), timeout=5) is True
