"""The sandbox one submission runs in: who runs inside it, with what rights and limits, and the
bounded exchange with the runner (root writes a job in, reads a capped result out, in time)."""

import json
import os
import subprocess
import sys
import time

import pytest

from compatlab.grader import sandbox
from compatlab.grader.cgroups import SandboxGroup

PROBE = '''
import json, os, resource
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
runner = str(os.getppid())  # the kernel's parent: the runner, which started it
def attempt(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return type(exc).__name__
runner_status = dict(line.split(":", 1) for line in open(f"/proc/{runner}/status"))
print("PROBE " + json.dumps({
    "uid": os.getuid(), "runner_uid": int(runner_status["Uid"].split()[0]),
    "caps": status["CapEff"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "runner_caps": runner_status["CapEff"].strip(),
    "signal_runner": attempt(lambda: os.kill(int(runner), 0)),
    "runner_environ": attempt(lambda: open(f"/proc/{runner}/environ").read()),
    "address_space": resource.getrlimit(resource.RLIMIT_AS)[0], "processes": resource.getrlimit(resource.RLIMIT_NPROC)[0],
    "file_size": resource.getrlimit(resource.RLIMIT_FSIZE)[0], "core": resource.getrlimit(resource.RLIMIT_CORE)[0],
    "tmp_bytes": os.statvfs("/tmp").f_blocks * os.statvfs("/tmp").f_frsize,
    "cwd": os.getcwd(), "home": os.environ["HOME"]}))
'''


def job(box: sandbox.Sandbox, source: str) -> bytes:
    limits = box.limits
    return json.dumps({
        "cells": [{"index": 0, "source": source, "role": "student", "label": "cell 1"}],
        "limits": {name: getattr(limits, name) for name in ("cell_timeout", "notebook_timeout", "cell_output_bytes",
                                                            "notebook_output_bytes", "message_bytes")},
        "kernel": {"prefix": sandbox.kernel_prefix(box), "env": sandbox.kernel_env(box, {})},
        "guard": {"roles": {}, "watch": []}}).encode()


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    assert os.geteuid() == 0, "CI grades as root, as the README recommends; these checks need it"
    assert not sandbox.unavailable(), sandbox.unavailable()
    box = sandbox.prepare(tmp_path_factory.mktemp("box"), sandbox.Limits(cell_timeout=60), True)
    box.uids, lock = sandbox.claim_uids(sandbox.Path(box.root))
    outcome = sandbox.run(box, job(box, PROBE))
    result = json.loads(outcome.result)
    text = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    line = next(line for line in text.splitlines() if line.startswith("PROBE "))
    return box, json.loads(line[len("PROBE "):])


def test_the_kernel_and_the_runner_are_two_users_of_their_own(probed):
    box, found = probed
    assert (found["runner_uid"], found["uid"]) == box.uids and 0 not in box.uids


def test_the_kernel_has_no_rights_and_cannot_reach_the_runner(probed):
    _, found = probed
    assert found["caps"] == "0000000000000000" and found["no_new_privs"] == "1"
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
        return (*sandbox.exchange(process, job, time.monotonic() + deadline, result_cap, log_cap),
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
