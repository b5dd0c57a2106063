"""Grading students in parallel: a pool of worker processes, each running nbgrader.

nbgrader grades one submission after another (jupyter/nbgrader#174). The costly part is the
notebook's kernel, so N worker processes each drive their own kernels, all writing to the one
gradebook: SQLite serialises their short write transactions, and a generous lock timeout in the
database URL makes a worker wait for another's write instead of failing.

The pool starts before anything else, so the workers' imports (nbgrader, nbconvert: seconds
each) overlap the lab engines' start; the workers then prepare the lessons too
(`generate_assignment`, side by side), and each lesson's submissions are graded as soon as it is
ready. A worker process that dies takes only its own tasks with it: those are tried once more
in a fresh pool, then reported as failed, and the rest of the class is graded.

`compatlab check` grades with one worker in its own process instead (`InProcess`): a process
would import nbgrader a second time, and a notebook still gets a fresh sandbox of its own.
"""

import multiprocessing.util
import os
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from compatlab.grader import sandbox, warm
from compatlab.grader.course import Course, source_notebook

ATTEMPTS = 2  # a task whose worker process dies is tried this many times

_course = None  # this worker's course and nbgrader API, built once
_api = None
_box = None  # this worker's sandbox settings, its users included
_slot = None  # the lock that holds this worker's relay
_users = None  # the lock that holds this worker's sandbox users (as root)


class GradingError(Exception):
    """nbgrader could not grade at all (e.g. it could not prepare an assignment)."""


def _start(course_root: str, paths: dict[str, str], box: str, cluster: str = "", ahead: bool = False) -> None:
    """A worker's start. `ahead`: it grades one notebook after another, so each next sandbox
    starts as soon as the last one is gone (sandbox.Spare)."""
    global _course, _api, _box, _slot, _users
    _box = sandbox.Sandbox.from_json(box)
    if _box.isolated and not cluster:  # a relay and (as root) users of its own: a fork bomb spends only this worker's budget
        _box.slot, _slot = sandbox.claim_slot(Path(_box.root))
        _box.uids, _users = sandbox.claim_users()
        if _box.uids:  # as root, kernels forked from a template (warm.py): it imports from now on
            warm.use(sandbox.runner_env())
    settings = nbgrader_settings(_box, cluster)  # here, not in the parent: nbgrader's import takes a second
    if ahead and not cluster:
        from compatlab.grader.sandboxed_execute import SandboxedExecute

        SandboxedExecute.spare = spare = sandbox.Spare()
        # before the template stops (exitpriority 10): a pool's worker leaves through os._exit
        multiprocessing.util.Finalize(spare, spare.discard, exitpriority=20)
    _course = Course(Path(course_root))
    _api = _course.nbgrader_api(settings=settings, **paths)


class InProcess:
    """One worker in this process, as an executor: its start (nbgrader's import, a second) in a
    thread of its own, beside the engines' start; its tasks in the caller's thread, so that
    Ctrl-C there stops the sandbox at once (sandbox.run) instead of waiting for a thread."""

    def __init__(self, initargs: tuple) -> None:
        self.failure: BaseException | None = None
        self.starting = threading.Thread(target=self._start, args=initargs, daemon=True)
        self.starting.start()

    def _start(self, *initargs) -> None:
        try:
            _start(*initargs)
        except Exception as exc:  # noqa: BLE001 -- every task then fails with it
            self.failure = exc

    def submit(self, function, *args) -> Future:
        self.starting.join()
        future = Future()
        try:
            if self.failure:
                raise self.failure
            future.set_result(function(*args))
        except Exception as exc:  # noqa: BLE001 -- as a pool's future holds it
            future.set_exception(exc)
        return future

    def shutdown(self, cancel_futures: bool = False) -> None:
        """Give back the slot and the users (a worker process does so when it exits)."""
        global _slot, _users
        self.starting.join()
        for handle in (_slot, _users):
            if handle is not None:
                handle.close()
        _slot = _users = None


def nbgrader_settings(box: sandbox.Sandbox, cluster: str = "") -> dict:
    """Autograde with SandboxedExecute in place of Execute: the notebook runs in a sandbox,
    everything else (nbgrader's checks, the gradebook, the files it writes) stays here. With a
    `cluster` (a Dask scheduler's address), RemoteExecute: the sandbox is a cluster worker's."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    from compatlab.grader.sandboxed_execute import RemoteExecute, SandboxedExecute

    step = RemoteExecute if cluster else SandboxedExecute
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    return {"Autograde": {"autograde_preprocessors": [step if p is Execute else p for p in default]},
            "SandboxedExecute": {"sandbox": box.to_json()},
            **({"RemoteExecute": {"cluster": cluster}} if cluster else {}),
            # a test cell the learner deleted comes back, and runs
            "OverwriteCells": {"add_missing_cells": True}}


def last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no detail"


def _failure(result: dict, what: str) -> str:
    """Log nbgrader's whole story (the parent sends this process's stderr to grading.log) and
    return its last line."""
    print(f"--- nbgrader could not {what}:\n{result.get('log')}\n{result.get('error')}", file=sys.stderr, flush=True)
    return last_line(result.get("error") or result.get("log"))


def _set_engines(env: dict[str, str], bridges: tuple[int, ...]) -> None:
    """The engines' addresses for this worker's kernels; as root, the worker's warm template
    again if it is gone (warm.py)."""
    os.environ.update(env)
    _box.bridges = bridges
    if _box.isolated and _box.uids:
        warm.use(sandbox.runner_env())


def prepare_one(env: dict[str, str], bridges: tuple[int, ...], assignment: str, due=None) -> str:
    """generate_assignment for one lesson in this worker, and its due date (UTC) when it has one,
    before any of its submissions is graded: autograde reads it to tell which are late. ""
    when done, else why not."""
    _set_engines(env, bridges)
    source_notebook(_course, assignment)
    result = _api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        return _failure(result, f"prepare {assignment}")
    if due is not None:
        from compatlab.grader.gradebook import set_due_dates

        set_due_dates(_api.coursedir.db_url, _api.coursedir.course_id, {assignment: due})
    return ""


def grade_one(env: dict[str, str], bridges: tuple[int, ...], assignment: str, student: str) -> str:
    """Autograde one submission in this worker: the engines' addresses in `env`, their ports
    relayed into the sandbox; "" when nbgrader scored it, else why not."""
    from compatlab.grader.sandboxed_execute import SandboxedExecute

    _set_engines(env, bridges)
    _api.config.SandboxedExecute.sandbox = _box.to_json()
    result = _api.autograde(assignment, student, force=True, create=True)
    if result["success"]:
        return ""
    reason = SandboxedExecute.failures.pop(f"{student}/{assignment}", "")
    failure = _failure(result, f"grade {student}/{assignment}")
    return f"not graded: {reason}" if reason else "nbgrader failed: " + failure


class GradingPool:
    """`workers` processes that prepare lessons and grade submissions; they start at once."""

    def __init__(self, course: Course, paths: dict[str, Path], workers: int, box: sandbox.Sandbox,
                 in_process: bool = False, cluster: str = "") -> None:
        # box: where submissions run and under which limits (its folders exist: sandbox.prepare);
        # with a cluster (a Dask scheduler's address), only the limits: the sandboxes are its workers'
        self.initargs = (str(course.root), {k: str(v) for k, v in paths.items()}, box.to_json(), cluster)
        self.workers = max(1, workers)
        self.in_process = in_process  # one worker, in this process
        self.dues: dict = {}  # lesson -> its due date, set as it is prepared (grade())
        self.executor = self._spawn()

    def _spawn(self) -> ProcessPoolExecutor | InProcess:
        if self.in_process:
            return InProcess(self.initargs)
        # spawn, not fork: the parent holds threads (engines' watchers, rich) that fork would copy
        executor = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"), initializer=_start,
                                       initargs=(*self.initargs, True))
        for _ in range(self.workers):  # a pool starts a process per task it cannot place: start them all now
            executor.submit(os.getpid)
        return executor

    def close(self) -> None:
        self.executor.shutdown(cancel_futures=True)

    def __enter__(self) -> "GradingPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def grade(self, env: dict[str, str], bridges: tuple[int, ...], lessons: list[str],
              jobs: list[tuple[str, str]], dues: dict | None = None) -> Iterator[tuple[tuple[str, str], str]]:
        """Prepare `lessons` (with their due dates, `dues`), then grade (assignment, student) jobs,
        each as soon as its lesson is ready; yield (job, problem) as each finishes, problem "" on
        success. Raises GradingError when a lesson cannot be prepared."""
        self.dues = dues or {}
        waiting = defaultdict(list)  # lesson -> its jobs, until the lesson is prepared
        for job in jobs:
            waiting[job[0]].append(job)
        # the first lesson prepared may create the gradebook (its tables, alembic's stamp): alone,
        # since two workers creating it at once collide ("table assignment already exists")
        later = [("prepare", lesson) for lesson in lessons[1:]]
        queue = [("prepare", lesson) for lesson in lessons[:1]]
        queue += [("grade", job) for lesson in list(waiting) if lesson not in lessons for job in waiting.pop(lesson)]
        tries: Counter = Counter()
        while queue:
            running = {self._submit(task, env, bridges): task for task in queue}
            queue = []
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    kind, what = task = running.pop(future)
                    try:
                        problem = future.result()
                    except BrokenProcessPool:
                        tries[task] += 1
                        if tries[task] < ATTEMPTS:
                            queue.append(task)
                            continue
                        problem = "the grading process died (out of memory or killed)"
                    except Exception as exc:  # noqa: BLE001 -- one student's failure never stops the class
                        problem = f"grading failed: {type(exc).__name__}: {exc}"
                    if kind == "grade":
                        yield what, problem
                    elif problem:
                        raise GradingError(f"nbgrader could not prepare {what}: {problem}")
                    else:
                        for follow in later + [("grade", job) for job in waiting.pop(what, [])]:
                            running[self._submit(follow, env, bridges)] = follow
                        later = []
            if queue:  # the pool broke: a fresh one for what it took with it
                self.close()
                self.executor = self._spawn()

    def _submit(self, task: tuple, env: dict[str, str], bridges: tuple[int, ...]):
        kind, what = task
        if kind == "prepare":
            return self.executor.submit(prepare_one, env, bridges, what, self.dues.get(what))
        return self.executor.submit(grade_one, env, bridges, *what)
