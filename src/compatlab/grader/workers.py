"""Grading students in parallel: a pool of worker processes, each running nbgrader's autograde.

nbgrader grades one submission after another (jupyter/nbgrader#174). The costly part is the
notebook's kernel, so N worker processes each drive their own kernels, all writing to the one
gradebook: SQLite serialises their short write transactions, and a generous lock timeout in the
database URL makes a worker wait for another's write instead of failing. A worker process that
dies takes only its own submissions with it: those are retried once in a fresh pool, then
reported as failed, and the rest of the class is graded.
"""

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from compatlab.grader import sandbox
from compatlab.grader.course import Course

ATTEMPTS = 2  # a submission whose worker process dies is tried this many times

_api = None  # one nbgrader API per worker process, built once
_slot = None  # the lock that holds this worker's sandbox user


def _start(course_root: str, paths: dict[str, str], settings: dict, sandboxed: bool) -> None:
    global _api, _slot
    if sandboxed:  # a user of its own, so a fork bomb spends only this worker's process budget
        box = json.loads(os.environ[sandbox.SETTINGS_VARIABLE])
        box["uid"], _slot = sandbox.claim_uid(Path(box["root"]))
        os.environ[sandbox.SETTINGS_VARIABLE] = json.dumps(box)
        # IPC socket files go in the shared runtime folder, named for this worker (the default is
        # relative to the kernel's working folder, which is not the worker's)
        ipc = {"ip": str(Path(os.environ["JUPYTER_RUNTIME_DIR"]) / f"kernel-{os.getpid()}")}
        settings = {**settings, "KernelManager": {**settings["KernelManager"], **ipc}}
    _api = Course(Path(course_root)).nbgrader_api(settings=settings, **paths)


def nbgrader_settings(cell_timeout: int, sandboxed: bool) -> dict:
    """Autograde with GradingExecute (an output cap) and a per-cell time limit; sandboxed
    kernels talk over IPC sockets, since TCP does not cross their network namespace."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    from compatlab.grader.execute import GradingExecute

    default = Autograde.class_traits()["autograde_preprocessors"].default()
    settings = {"Autograde": {"autograde_preprocessors": [GradingExecute if p is Execute else p for p in default]},
                # a cell whose trailing output is late is scored on what arrived, not failed whole
                "Execute": {"timeout": cell_timeout, "raise_on_iopub_timeout": False}}
    if sandboxed:
        settings["KernelManager"] = {"transport": "ipc"}
    return settings


def last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no detail"


def grade_one(assignment: str, student: str) -> str:
    """Autograde one submission in this worker; "" when nbgrader scored it, else why not."""
    result = _api.autograde(assignment, student, force=True, create=True)
    if result["success"]:
        return ""
    print(f"--- nbgrader could not grade {student}/{assignment}:\n{result.get('log')}\n{result.get('error')}",
          file=sys.stderr, flush=True)  # the parent sends this process's stderr to grading.log
    return "nbgrader failed: " + last_line(result.get("error") or result.get("log"))


def graded(course: Course, paths: dict[str, str], jobs: list[tuple[str, str]], workers: int,
           cell_timeout: int = 30, sandboxed: bool = False) -> Iterator[tuple[tuple[str, str], str]]:
    """Grade (assignment, student) jobs with `workers` processes; yield (job, problem) as each
    finishes, problem "" on success."""
    settings = nbgrader_settings(cell_timeout, sandboxed)
    tries: Counter = Counter()
    pending = list(jobs)
    while pending:
        # spawn, not fork: the parent holds threads (engines' watchers, rich) that fork would copy
        with ProcessPoolExecutor(max(1, workers), mp_context=get_context("spawn"), initializer=_start,
                                 initargs=(str(course.root), {k: str(v) for k, v in paths.items()}, settings,
                                           sandboxed)) as pool:
            futures = {pool.submit(grade_one, *job): job for job in pending}
            pending = []
            for future in as_completed(futures):
                job = futures[future]
                try:
                    yield job, future.result()
                except BrokenProcessPool:
                    tries[job] += 1
                    if tries[job] < ATTEMPTS:
                        pending.append(job)
                    else:
                        yield job, "the grading process died (out of memory or killed)"
                except Exception as exc:  # noqa: BLE001 -- one student's failure never stops the class
                    yield job, f"grading failed: {type(exc).__name__}: {exc}"
