"""Grading on a Dask cluster: the one step that runs student code, on the cluster's workers.

`compatlab grade --cluster tcp://scheduler:8786` runs on the coordinator exactly what it runs
alone (intake, the lessons' preparation, nbgrader's autograde with its gradebook, feedback, the
report): only nbgrader's Execute step moves. `RemoteExecute` (sandboxed_execute.py) builds the
same job as local grading, with only the parts that are the same on every machine (cells, roles,
labels, limits, the guard's settings), and sends it here, to `run_job` on a worker, which fills in
its own part (its kernel users, its engines' addresses and relays), runs the sandbox exactly as
local grading does (sandbox.run), and sends back what came out, capped: the coordinator reads and
checks it as it reads a local sandbox's (read_result), so the grades are the same by construction.
Nothing of the course travels but the job: a worker needs the kit (the same version) and
bubblewrap, no masters, no hidden tests, no shared folder.

Per worker, once (`SandboxPlugin`, a Dask WorkerPlugin the coordinator registers): the checks
(bubblewrap usable, the kit's version and source digest equal to the coordinator's), then the
four lab engines (sandboxed, as `compatlab grade` starts them), the sandbox folder, one relay,
one pair of users and one warm template per thread of the worker. Only then does the worker
advertise the resource SANDBOX (one per thread), and tasks ask for it: a worker that refused
never gets a task, and one that joins later gets tasks once its own set-up is done. The
coordinator prints each refusal with the worker's address.

Faults: Dask reruns a task whose worker died (the scheduler's allowed-failures); the coordinator
sends a task that failed anyway (KilledWorker, an error on the worker, no answer in time) once
more, and a second failure is that submission's reason for not being graded, never the class's.
A task is idempotent: it writes nothing anywhere, and returns its result.

Dask moves pickles: whoever reaches the scheduler can run code on every worker. Only the
instructor's machines may reach it (README, "Courses bigger than one machine"; Dask's TLS).
"""

import hashlib
import json
import os
import queue
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import compatlab
from distributed.diagnostics.plugin import WorkerPlugin

from compatlab.grader import sandbox, warm

CLUSTER_VARIABLE = "COMPATLAB_CLUSTER"
RESOURCE = "SANDBOX"  # what a worker advertises, one per thread, once it can grade
PLUGIN = "compatlab"
ATTEMPTS = 2  # a task that fails is sent this many times in all
LOG_CAP = 512 * 1024  # what the coordinator accepts of a sandbox's terminal output (the worker caps it first)
CONNECT_SECONDS = 30
ORPHAN_SECONDS = 30  # no worker able to grade for this long: the task's attempt has failed
POLL_SECONDS = 5  # how often a waiting task looks at whether any worker can still grade it


def kit_identity() -> dict[str, str]:
    """The kit as installed here: its version, and a digest of its source files (the grader, the
    kernel's side, the engines), so that two installs that differ by one line are told apart."""
    package = Path(compatlab.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return {"version": compatlab.__version__, "digest": digest.hexdigest()}


# ---------------------------------------------------------------- the worker's side


@dataclass
class Slot:
    """One thread's share of a worker: its relay to the engines, its users, its warm template."""

    index: int
    uids: tuple[int, int] | None
    handles: tuple
    template: "warm.Template | None"


class SandboxPlugin(WorkerPlugin):
    """Set up once per worker, torn down when the worker closes (or when a coordinator with
    another kit replaces it). Built on the coordinator with its kit's identity; run on the
    worker, it compares that with the worker's own."""

    name = PLUGIN

    def __init__(self, expected: dict[str, str]) -> None:
        self.expected = expected
        self.refused = ""  # why this worker cannot grade; "" when it can
        self.slots: "queue.Queue[Slot]" = queue.Queue()
        self.bridges = self.root = None
        self.ports: tuple[int, ...] = ()
        self.env: dict[str, str] = {}
        self.ready = False

    def __getstate__(self) -> dict:  # only the identity travels
        return {"expected": self.expected}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["expected"])

    async def setup(self, worker) -> None:
        threads = worker.state.nthreads
        self.refused = self.check()
        if not self.refused:
            # on the worker's main thread, though it blocks its event loop for a second or two (no
            # task runs yet): the engines and relays die with the thread that started them
            # (PR_SET_PDEATHSIG, bwrap --die-with-parent), so not in a pool's thread
            try:
                self.start(threads)
            except Exception as exc:  # noqa: BLE001 -- said on the coordinator's console, not raised
                self.refused = f"its set-up failed: {type(exc).__name__}: {exc}"
                self.stop()
        await worker.set_resources(**{RESOURCE: 0 if self.refused else threads})

    def check(self) -> str:
        """Why this worker cannot grade for this coordinator, or ""."""
        if missing := sandbox.missing_tools():
            return (f"{', '.join(missing)} not found: install them on this worker (`make sandbox`, or "
                    "`apt-get install bubblewrap util-linux`)")
        if problem := sandbox.unavailable():  # the local grader's advice (--no-sandbox) is not for a worker
            return f"cannot sandbox student code: {problem.removesuffix('; grade with --no-sandbox')}"
        mine = kit_identity()
        if mine["version"] != self.expected["version"]:
            return (f"compatlab {mine['version']} is installed, the coordinator has {self.expected['version']}: "
                    "install the same version on both")
        if mine["digest"] != self.expected["digest"]:
            return (f"compatlab's source differs from the coordinator's (digest {mine['digest'][:12]}, the "
                    f"coordinator's {self.expected['digest'][:12]}): install the same checkout on both")
        return ""

    def start(self, threads: int) -> None:
        """What `compatlab grade` does for its own workers, once: engines, relays, users, templates."""
        from compatlab.backends import ENGINES_VARIABLE, lab_engines
        from compatlab.process import engine_env

        root = os.geteuid() == 0
        templates = [warm.Template(sandbox.runner_env()) if root else None for _ in range(threads)]  # imports overlap
        os.environ.pop(ENGINES_VARIABLE, None)  # this worker's own engines, never one named from outside
        self.root = Path(tempfile.mkdtemp(prefix="compatlab-box-"))
        box = sandbox.prepare(self.root, sandbox.Limits(), True)
        engines = lab_engines(prefix=tuple(sandbox.engine_prefix()))
        self.env = {ENGINES_VARIABLE: json.dumps(engines), **engine_env(engines["ollama"])}
        self.ports = box.bridges = tuple(urlsplit(url).port for url in engines.values())
        self.bridges = sandbox.EngineBridges(box, threads)
        for template in templates:
            index, slot_handle = sandbox.claim_slot(self.root)
            uids, users_handle = sandbox.claim_users()
            self.slots.put(Slot(index, uids, (slot_handle, users_handle), template if uids else None))
        self.ready = True

    def teardown(self, worker) -> None:
        self.stop()

    def stop(self) -> None:
        from compatlab.backends import stop_lab_engines

        self.ready = False
        while not self.slots.empty():
            slot = self.slots.get_nowait()
            for handle in slot.handles:
                if handle is not None:
                    handle.close()
            if slot.template:
                slot.template.stop()
        if self.bridges:
            self.bridges.stop()
            self.bridges = None
        stop_lab_engines()
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def run(self, job: dict, limits: dict) -> dict:
        """One submission's sandbox, on one of this worker's slots."""
        slot = self.slots.get(timeout=60)
        try:
            if slot.template and slot.template.process.poll() is not None:  # gone: a fresh one
                slot.template = warm.Template(sandbox.runner_env())
            box = sandbox.Sandbox(str(self.root), sandbox.Limits(**limits), True, self.ports, slot.index, slot.uids)
            # the coordinator's allowlisted variables (NBGRADER_EXECUTION), with this worker's engines
            outcome = sandbox.run(box, sandbox.complete_job(box, job, {**job.get("environment", {}), **self.env}),
                                  slot.template)
        finally:
            self.slots.put(slot)
        return {"problem": outcome.problem, "result": outcome.result, "log": outcome.log}


def run_job(job: dict, limits: dict) -> dict:
    """The task: run one notebook's job in a sandbox of this worker (see SandboxPlugin.run)."""
    from distributed import get_worker

    worker = get_worker()
    plugin = worker.plugins.get(PLUGIN)
    if not isinstance(plugin, SandboxPlugin) or not plugin.ready:
        raise RuntimeError(f"worker {worker.address} is not set up to grade")
    started = time.monotonic()
    reply = plugin.run(job, limits)
    return {**reply, "worker": worker.address, "seconds": time.monotonic() - started}


def _status(identity: dict, dask_worker=None) -> dict:
    """This worker's set-up: why it refused, how many submissions it takes at once, and whether
    it was set up for this kit (`identity`, the coordinator's)."""
    plugin = dask_worker.plugins.get(PLUGIN)
    if not isinstance(plugin, SandboxPlugin):
        return {"refused": "compatlab's set-up did not run here", "threads": 0, "same": False}
    return {"refused": plugin.refused, "threads": dask_worker.state.nthreads if plugin.ready else 0,
            "same": plugin.expected == identity}


# ---------------------------------------------------------------- the coordinator's side


class ClusterError(Exception):
    """The cluster cannot grade at all (no scheduler, no worker that can)."""


def connect(address: str, say=print) -> int:
    """Set up every worker of the cluster at `address` (once: a worker keeps its set-up from one
    run to the next while the kit is the same), say which refused and why, and return how many
    submissions the workers that can grade take at once (their threads)."""
    from distributed import Client

    try:
        client = Client(address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"no Dask scheduler answers at {address} ({type(exc).__name__}: {exc})") from None
    try:
        if not client.scheduler_info().get("workers"):
            try:
                client.wait_for_workers(1, timeout=CONNECT_SECONDS)
            except TimeoutError:
                raise ClusterError(f"the Dask scheduler at {address} has no worker") from None
        identity = kit_identity()
        statuses = client.run(_status, identity, on_error="return")
        # set up once: a worker keeps its engines from one run to the next while the kit is the
        # same; registering again (another coordinator's kit) tears the old set-up down first
        if not all(isinstance(s, dict) and s["same"] for s in statuses.values()):
            try:
                client.register_plugin(SandboxPlugin(identity), name=PLUGIN)
            except Exception as exc:  # noqa: BLE001 -- e.g. a worker without compatlab cannot unpickle it
                say(f"a worker could not take compatlab's set-up: {type(exc).__name__}: {str(exc)[:300]} "
                    "(is the kit installed there?)")
            statuses = client.run(_status, identity, on_error="return")
    finally:
        client.close()
    threads = 0
    for worker, status in sorted(statuses.items()):
        if isinstance(status, Exception):
            status = {"refused": f"{type(status).__name__}: {status} (is compatlab installed there?)", "threads": 0}
        if status["refused"]:
            say(f"worker {worker} refused: {status['refused']}")
        threads += status["threads"]
    if not threads:
        raise ClusterError(f"no worker of the cluster at {address} can grade (see above)")
    return threads


_clients: dict = {}


def _client(address: str):
    """This process's client (each of the coordinator's grading processes has one)."""
    from distributed import Client

    if address not in _clients:
        _clients[address] = Client(address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)
    return _clients[address]


def run_remote(address: str, job: dict, limits: sandbox.Limits, name: str) -> sandbox.Outcome:
    """Run a job on the cluster and bring back its outcome, as sandbox.run would give it here.
    A task that fails (its worker died twice, an error, no answer in time, no worker left that
    can grade) is sent once more; a second failure is the outcome's problem."""
    wait = 2 * (limits.notebook_timeout + 180)  # a worker's own limit is notebook_timeout + 120 s
    failures = []
    for attempt in range(1, ATTEMPTS + 1):
        try:
            client = _client(address)
            future = client.submit(run_job, job, asdict(limits), key=f"compatlab-{name}-{uuid.uuid4().hex}",
                                   pure=False, resources={RESOURCE: 1})
            return _outcome(_wait(client, future, wait), limits)
        except Exception as exc:  # noqa: BLE001 -- KilledWorker, the task's own error, a timeout, a lost connection
            failures.append(f"{type(exc).__name__}: {str(exc)[:300]}")
            if getattr(_clients.get(address), "status", None) != "running":  # a lost connection: a new one
                _clients.pop(address, None)
    return sandbox.Outcome(b"", b"", "the cluster could not grade it: " + "; then ".join(failures))


_orphaned_at: float | None = None  # when this process last saw no worker able to grade


def _wait(client, future, wait: float):
    """The task's result, within `wait` seconds; sooner an error when no worker of the cluster
    can grade for ORPHAN_SECONDS (they all died or left): a task that needs SANDBOX would
    otherwise wait at the scheduler for the whole `wait`. Once this process has waited that
    long, later tasks that find no worker fail at once, until one is back."""
    global _orphaned_at
    deadline = time.monotonic() + wait
    while True:
        try:
            return future.result(timeout=POLL_SECONDS)
        except TimeoutError:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"no answer within {wait} s") from None
            if _grading_slots(client):
                _orphaned_at = None
                continue
            if _orphaned_at is None or now - _orphaned_at > 2 * ORPHAN_SECONDS + POLL_SECONDS:  # a new outage
                _orphaned_at = now
            elif now - _orphaned_at >= ORPHAN_SECONDS:
                future.cancel()
                raise ClusterError(f"no worker of the cluster can grade (none for {ORPHAN_SECONDS} s)") from None


def _grading_slots(client) -> int:
    """How many submissions the cluster's workers that can grade take at once (SANDBOX)."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return sum(int(w.get("resources", {}).get(RESOURCE, 0)) for w in workers.values())


def _outcome(reply, limits: sandbox.Limits) -> sandbox.Outcome:
    """A worker's reply, checked for shape and size before anything reads it."""
    if not isinstance(reply, dict):
        return sandbox.Outcome(b"", b"", "the worker's reply is not a result")
    result, log, problem = reply.get("result"), reply.get("log"), reply.get("problem")
    if not (isinstance(result, bytes) and isinstance(log, bytes) and isinstance(problem, str)):
        return sandbox.Outcome(b"", b"", "the worker's reply is not a result")
    cap = 2 * limits.notebook_output_bytes + 64 * 2**20
    if len(result) > cap:
        return sandbox.Outcome(b"", log[:LOG_CAP], f"the worker's result was larger than {cap:,} bytes")
    seconds = reply.get("seconds")
    took = f" in {seconds:.2f} s" if isinstance(seconds, float) else ""
    where = f"[compatlab grader: ran on {str(reply.get('worker'))[:200]}{took}]\n".encode()
    return sandbox.Outcome(result, where + log[:LOG_CAP], problem[:2000])
