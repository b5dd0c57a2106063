"""`compatlab grade --cluster`: one lesson of the sample class graded on a real Dask cluster on
loopback (a scheduler and two workers, each in its own working folder, started here), with the
same grades as local grading (the session's `graded`); a worker killed mid-run, with every
submission still graded once; a worker that cannot sandbox, refused with its reason and never
given a task."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compatlab.grader import cluster, sandbox
from compatlab.grader.course import REPO
from support import free_port

LESSON = "first-contact"
BIN = Path(sys.executable).parent


class DaskCluster:
    """A scheduler and workers as processes of their own (each its own process group: a worker's
    relays and engines go with it at the end), stopped by `stop` whatever happened."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.processes: list[subprocess.Popen] = []

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.folder,
                                   start_new_session=True)
        log.close()
        self.processes.append(process)
        return process

    def scheduler(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        self._start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", port,
                                  "--no-dashboard"], dict(os.environ))

    def worker(self, name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        # --no-nanny: a killed worker stays dead, so its task must be rerun on the other
        (self.folder / name).mkdir()
        return self._start(name, [str(BIN / "dask"), "worker", self.address, "--nthreads", "1", "--no-nanny",
                                  "--local-directory", str(self.folder / name), "--no-dashboard", "--name", name],
                           env or dict(os.environ))

    def stop(self) -> None:
        for process in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """Two workers that can grade, and one whose PATH has no bubblewrap (it must refuse)."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    running = DaskCluster(folder)
    try:
        running.scheduler()
        running.good = {name: running.worker(name) for name in ("worker-1", "worker-2")}
        running.worker("no-bwrap", {**os.environ, "PATH": "/nonexistent"})
        with Client(running.address, timeout="30s") as client:
            client.wait_for_workers(3, timeout=60)
            running.pids = client.run(os.getpid)  # address -> pid
            running.names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
        yield running
    finally:
        running.stop()


def _submissions(folder: Path) -> Path:
    """The sample class's first-contact notebooks (8), copied: the grader refuses links."""
    for lesson in sorted((REPO / "data" / "sample-class" / "submitted").glob(f"*/{LESSON}")):
        shutil.copytree(lesson, folder / lesson.parent.name / LESSON)
    return folder


def _grade(submissions: Path, out: Path, address: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "compatlab", "grade", str(submissions), "--out", str(out),
                             "--cluster", address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=REPO, env={**os.environ, "COLUMNS": "200"})


def _rows(out: Path) -> list[dict]:
    with open(out / "grades.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _same_grades(rows: list[dict], local: dict) -> None:
    """Every submission once, each with local grading's score, status, review and cell points."""
    assert sorted(row["student"] for row in rows) == sorted(s for s, a in local if a == LESSON)
    for row in rows:
        mine = local[(row["student"], LESSON)]
        for name in ["score", "max_score", "status", "review"] + [k for k in row if k.startswith(f"{LESSON}/")]:
            assert row[name] == mine[name], (row["student"], name)


def test_cluster_grades_as_local_grading_does(dask_cluster, graded, tmp_path):
    _, _, local = graded
    started = time.monotonic()
    run = _grade(_submissions(tmp_path / "submitted"), tmp_path / "out", dask_cluster.address)
    console, _ = run.communicate(timeout=600)
    assert run.returncode == 0, console
    _same_grades(_rows(tmp_path / "out"), local)
    # the worker without bubblewrap said why on the coordinator's console, and got no task
    bad = next(a for a, name in dask_cluster.names.items() if name == "no-bwrap")
    assert f"worker {bad} refused: bwrap, setpriv, prlimit not found: install them on this worker" in console
    assert "2 sandboxes at once" in console
    log = (tmp_path / "out" / "nbgrader" / "grading.log").read_text()
    ran_on = [line.split("ran on ")[1].split()[0] for line in log.splitlines() if "[compatlab grader: ran on" in line]
    assert len(ran_on) == 8 and bad not in ran_on and len(set(ran_on)) == 2
    print(f"8 notebooks on two workers: {time.monotonic() - started:.1f} s")


def test_a_worker_killed_mid_run_loses_no_submission(dask_cluster, graded, tmp_path):
    from distributed import Client

    _, _, local = graded
    run = _grade(_submissions(tmp_path / "submitted"), tmp_path / "out", dask_cluster.address)
    try:
        with Client(dask_cluster.address, timeout="30s") as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = [address for address, keys in client.processing().items()
                        if any(str(key).startswith("compatlab-") for key in keys)]
                if busy:
                    break
                time.sleep(0.1)
            assert busy, "no task reached a worker"
        victim = dask_cluster.names[busy[0]]
        os.kill(dask_cluster.pids[busy[0]], signal.SIGKILL)  # mid-notebook: its sandbox dies with it
        console, _ = run.communicate(timeout=600)
    finally:
        run.kill()
    assert dask_cluster.good[victim].wait(10) == -signal.SIGKILL
    assert run.returncode == 0, console
    _same_grades(_rows(tmp_path / "out"), local)
    # the killed notebook was run again on the other worker, and so was every one after it
    log = (tmp_path / "out" / "nbgrader" / "grading.log").read_text()
    ran_on = [line.split("ran on ")[1].split()[0] for line in log.splitlines() if "[compatlab grader: ran on" in line]
    assert len(ran_on) == 8 and busy[0] not in ran_on
    # and nothing the dead worker started in its process group lives on (its relays, its engines)
    time.sleep(1)
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _group(pid) == dask_cluster.pids[busy[0]]]


def test_a_cluster_whose_last_worker_dies_reports_its_submissions_soon(tmp_path):
    """No worker left that can grade: each submission is reported not graded within about
    ORPHAN_SECONDS, not after the task's whole time limit (26 minutes at the defaults)."""
    from distributed import Client

    running = DaskCluster(tmp_path)
    try:
        running.scheduler()
        only = running.worker("only")
        folder = tmp_path / "submitted"
        for student in ("reference-solution", "blank-release"):
            shutil.copytree(REPO / "data" / "sample-class" / "submitted" / student / LESSON, folder / student / LESSON)
        started = time.monotonic()
        with Client(running.address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
            run = _grade(folder, tmp_path / "out", running.address)
            deadline = time.monotonic() + 180
            while not any(str(key).startswith("compatlab-") for keys in client.processing().values() for key in keys):
                assert time.monotonic() < deadline and run.poll() is None, "no task reached the worker"
                time.sleep(0.1)
        os.killpg(only.pid, signal.SIGKILL)
        console, _ = run.communicate(timeout=300)
        took = time.monotonic() - started
    finally:
        running.stop()
    assert run.returncode == 1, console
    rows = _rows(tmp_path / "out")
    assert len(rows) == 2 and all("no worker of the cluster can grade" in row["status"] for row in rows), rows
    assert took < 240, f"took {took:.0f} s"


def _group(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def test_a_task_that_fails_twice_is_a_reason_not_an_exception(dask_cluster):
    said = []
    assert cluster.connect(dask_cluster.address, said.append) >= 1  # set up already (one may have been killed)
    assert [line.split(" refused: ")[1] for line in said] == [
        "bwrap, setpriv, prlimit not found: install them on this worker (`make sandbox`, or `apt-get install "
        "bubblewrap util-linux`)"]
    try:
        outcome = cluster.run_remote(dask_cluster.address, None, sandbox.Limits(), "nobody-first-contact")
    finally:  # this process's client, made by run_remote: closed before the cluster stops
        cluster._clients.pop(dask_cluster.address).close()
    assert outcome.result == b""
    assert outcome.problem.startswith("the cluster could not grade it: AttributeError")
    assert "; then AttributeError" in outcome.problem


def test_a_worker_with_another_kit_refuses():
    plugin = cluster.SandboxPlugin({**cluster.kit_identity(), "digest": "0" * 64})
    assert "compatlab's source differs from the coordinator's" in plugin.check()
    plugin = cluster.SandboxPlugin({**cluster.kit_identity(), "version": "0.0.1"})
    assert plugin.check().startswith("compatlab 0.1.0 is installed, the coordinator has 0.0.1")
    assert cluster.SandboxPlugin(cluster.kit_identity()).check() == ""


def test_a_workers_reply_is_checked():
    limits = sandbox.Limits()
    assert cluster._outcome("nonsense", limits).problem == "the worker's reply is not a result"
    assert cluster._outcome({"result": "text", "log": b"", "problem": ""}, limits).problem
    big = {"result": b"x" * (2 * limits.notebook_output_bytes + 64 * 2**20 + 1), "log": b"", "problem": ""}
    assert "larger than" in cluster._outcome(big, limits).problem
    fine = cluster._outcome({"result": b"{}", "log": b"out", "problem": "", "worker": "tcp://w:1"}, limits)
    assert (fine.result, fine.problem) == (b"{}", "") and fine.log.endswith(b"out")
