"""One run's grading machinery: the sandboxes' folder, the worker pool, the lab engines and the
engines' relays, started together when a run has something to grade, and stopped together.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from compatlab.backends import ENGINES_VARIABLE, lab_engines, stop_lab_engines
from compatlab.grader import sandbox
from compatlab.grader.course import Course
from compatlab.grader.intake import UsageError
from compatlab.grader.safe_text import console as markup_safe
from compatlab.grader.workers import GradingPool
from compatlab.process import engine_env


def default_workers() -> int:
    """One worker more than CPUs: a kernel spends about a third of its time waiting (paced
    streams, timeouts), so as many workers as CPUs leave them idle. Measured on 2 cores, 18
    notebooks: 77.1 s with 2 workers, 67.1 s with 3, 66.0 s with 4, the grades identical."""
    return (os.cpu_count() or 1) + 1


def gradebook_url(work: Path) -> str:
    # workers share the gradebook: wait up to 10 minutes for another's write lock
    return f"sqlite:///{work / 'gradebook.db'}?timeout=600"


class Autograder:
    """Workers, engines and relays for grading into `work` (DIR/nbgrader); close() stops them all.
    `in_process`: one worker in this process (`compatlab check`); `cluster`: a Dask scheduler's
    address, whose workers run the sandboxes with their own engines, so none start here."""

    def __init__(self, course: Course, work: Path, console: Console, workers: int | None, sandboxed: bool,
                 limits: sandbox.Limits, in_process: bool = False, cluster: str = "") -> None:
        self.saved = dict(os.environ)
        # our own engines, never a COMPATLAB_ENGINES set from outside: the sandboxes reach only
        # the ports relayed to them, and grades must not depend on someone else's engine
        os.environ.pop(ENGINES_VARIABLE, None)
        # the relay's Unix sockets live in there: a path under --out could pass the 107 bytes a
        # socket's path may have, and a private folder of /tmp is readable by nobody else anyway
        self.box_root = Path(tempfile.mkdtemp(prefix="compatlab-box-"))
        self.pool: GradingPool | None = None
        self.bridges: sandbox.EngineBridges | None = None
        self.env: dict[str, str] = {}  # the kernels' environment: where the engines are
        try:
            self.box = sandbox.prepare(self.box_root, limits, sandboxed)
            if cluster:
                workers = workers or _cluster_slots(cluster, console)
            self.workers = workers or default_workers()
            paths = dict(root=work, source_directory=course.solutions, release_directory=work / "release",
                         submitted_directory=work / "submitted", autograded_directory=work / "autograded",
                         feedback_directory=work / "feedback", solution_directory=work / "solution",
                         db_url=gradebook_url(work))
            self.pool = GradingPool(course, paths, self.workers, self.box, in_process, cluster)
            if not cluster:
                self.env = self._start_engines(sandboxed)
        except BaseException:
            self.close()
            raise

    def _start_engines(self, sandboxed: bool) -> dict[str, str]:
        """The unpaced profiles, shared by every kernel (see LESSON_ENGINES), sandboxed themselves,
        and (sandboxed) each worker's relay to them; the kernels' environment. They start after
        the pool, so the workers' start (nbgrader's import, a warm kernel template) overlaps theirs."""
        engines = lab_engines(prefix=tuple(sandbox.engine_prefix()) if sandboxed else ())
        self.box.bridges = tuple(urlsplit(url).port for url in engines.values())
        if sandboxed:
            self.bridges = sandbox.EngineBridges(self.box, self.workers)
        return {ENGINES_VARIABLE: json.dumps(engines), **engine_env(engines["ollama"])}

    def grade(self, todo: list, new_lessons: list[str], dues: dict, console: Console) -> None:
        """Prepare `new_lessons`, grade the `todo` submissions, and set each one's problem ("" when
        nbgrader scored it), with a progress bar."""
        by_job = {(sub.assignment, sub.student): sub for sub in todo}
        columns = (TextColumn("grading {task.description:<32}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(f"with {self.workers} worker{'s' * (self.workers > 1)}", total=len(todo))
            for job, problem in self.pool.grade(self.env, self.box.bridges, new_lessons, list(by_job), dues):
                by_job[job].problem = problem
                progress.update(task, advance=1, description=markup_safe(job[1], 32))

    def __enter__(self) -> "Autograder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.pool:
            self.pool.close()
        if self.bridges:
            self.bridges.stop()
        stop_lab_engines()
        os.environ.clear()
        os.environ.update(self.saved)
        shutil.rmtree(self.box_root, ignore_errors=True)


def _cluster_slots(address: str, console: Console) -> int:
    """Set up the cluster's workers (cluster.py) and say which refused: how many sandboxes at once."""
    from compatlab.grader import cluster

    def say(text: str) -> None:
        console.print(f"[red]{markup_safe(text, 600)}[/]")

    try:
        slots = cluster.connect(address, say)
    except cluster.ClusterError as exc:
        raise UsageError(str(exc)) from None
    console.print(f"grading on the Dask cluster at {markup_safe(address, 200)}: {slots} sandbox{'es' * (slots > 1)} at once")
    return slots
