"""`compatlab grade SUBMISSIONS_DIR --out DIR`: autograde a class with nbgrader, then report.

SUBMISSIONS_DIR holds `<student>/<assignment>/<assignment>.ipynb`, nbgrader's submitted/
layout. Nothing in it is modified: submissions are copied into DIR/nbgrader/, a fresh nbgrader
course whose source is solutions/. nbgrader exits 0 when tests fail, so scores are read from
its gradebook; "graded" means nbgrader produced a score, whatever the score is.
"""

import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pandas as pd
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from compatlab.backends import ENGINES_VARIABLE, lab_engines, stop_lab_engines
from compatlab.grader import sandbox
from compatlab.grader.course import Course
from compatlab.grader.workers import GradingError, GradingPool
from compatlab.process import engine_env

EXIT_GRADED, EXIT_NOT_GRADED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """The command cannot start: a missing folder, an unknown assignment, nothing to grade."""


@dataclass
class Submission:
    student: str
    assignment: str
    folder: Path
    problem: str = ""  # why it cannot be graded; "" if it can
    fingerprint: str = ""  # the notebook's digest: a later run regrades it only if this changes
    score: float | None = None
    max_score: float | None = None
    cells: dict[str, tuple[float, float]] = field(default_factory=dict)  # grade_id -> (score, max)

    @property
    def key(self) -> str:
        return f"{self.student}/{self.assignment}"

    @property
    def status(self) -> str:
        return self.problem or "graded"


def find_submissions(folder: Path, course: Course) -> list[Submission]:
    """Every <student>/<assignment>/ under folder, each checked before anything runs."""
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}")
    known = course.assignments()
    found = []
    for student_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if assignment_dir.name not in known:
                raise UsageError(f"unknown assignment {assignment_dir.name!r} in {assignment_dir}; "
                                 f"this course has: {', '.join(known)}")
            found.append(Submission(student_dir.name, assignment_dir.name, assignment_dir))
    found.sort(key=lambda sub: (sub.assignment, sub.student))  # the table reads lesson by lesson
    if not found:
        raise UsageError(f"nothing to grade in {folder}: expected {folder}/<student>/<assignment>/<notebook>.ipynb")
    for submission in found:
        submission.problem = notebook_problem(submission.folder / f"{submission.assignment}.ipynb")
    return found


def notebook_problem(path: Path) -> str:
    """Why a submitted notebook cannot be graded, in one line; "" if it can."""
    if not path.is_file():
        others = sorted(p.name for p in path.parent.glob("*.ipynb"))
        return f"missing {path.name}" + (f" (found {', '.join(others)})" if others else "")
    try:
        nbformat.read(path, as_version=4)
    except nbformat.reader.NotJSONError:
        return f"{path.name} is not valid JSON"
    except (nbformat.ValidationError, KeyError, AttributeError) as exc:
        return f"{path.name} is not a Jupyter notebook ({type(exc).__name__})"
    return ""


def _read_scores(db_url: str, course: Course, submissions: list[Submission]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url, course.course_id()) as gradebook:
        for sub in submissions:
            if sub.problem:
                continue
            try:
                record = gradebook.find_submission(sub.assignment, sub.student)
            except MissingEntry:
                sub.problem = "nbgrader recorded no score"
                continue
            sub.score, sub.max_score = record.score, record.max_score
            for notebook in record.notebooks:
                for grade in notebook.grades:
                    sub.cells[grade.name] = (grade.score, grade.max_score)


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to a file: nbgrader, SQLAlchemy and every kernel write their
    warnings there, and the console keeps only the progress bar and the table."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def grade_class(folder: Path, out: Path, course: Course = Course(), console: Console | None = None,
                workers: int | None = None, sandboxed: bool = True, cell_timeout: int = 30) -> list[Submission]:
    """Autograde every submission in folder with `workers` processes (default: one per CPU);
    write DIR/grades.csv, feedback/ and report.html. nbgrader's own log goes to
    DIR/nbgrader/grading.log. A second run into the same DIR grades only new or changed
    submissions; a changed lesson master regrades everything."""
    console = console or Console()
    submissions = find_submissions(folder, course)
    if sandboxed and (problem := sandbox.unavailable()):
        raise UsageError(f"cannot sandbox student code: {problem}")
    work = out / "nbgrader"
    masters = {name: _digest(course.master(name)) for name in sorted({s.assignment for s in submissions})}
    state = _load_state(out / STATE_FILE)
    if not (work / "gradebook.db").is_file() or any(state["masters"].get(name, digest) != digest
                                                    for name, digest in masters.items()):
        shutil.rmtree(work, ignore_errors=True)
        state = {"masters": {}, "submissions": {}}
    work.mkdir(parents=True, exist_ok=True)
    for sub in submissions:
        if not sub.problem:
            sub.fingerprint = _digest(sub.folder / f"{sub.assignment}.ipynb")
    todo = [s for s in submissions if not s.problem and state["submissions"].get(s.key) != s.fingerprint]
    new_lessons = [name for name in masters if name not in state["masters"]]
    with stderr_to(work / "grading.log"):
        if todo or new_lessons:  # else nothing changed since the last run: no engines, no workers
            _autograde(course, work, todo, new_lessons, console, workers or os.cpu_count() or 1, sandboxed,
                       cell_timeout)
        _read_scores(_gradebook_url(work), course, submissions)
    reused = sum(1 for s in submissions if not s.problem) - len(todo)
    if reused:
        console.print(f"{len(todo)} submissions graded now; {reused} unchanged since the last run into {out} kept their grades")
    state["masters"].update(masters)
    state["submissions"] = {s.key: s.fingerprint for s in submissions if s.score is not None and not s.problem}
    (out / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))
    _write_outputs(out, work, submissions, cell_order(course, submissions))
    return submissions


STATE_FILE = "state.json"  # what the last run graded: lesson masters' and submissions' digests


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
        return {"masters": dict(state["masters"]), "submissions": dict(state["submissions"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {"masters": {}, "submissions": {}}


def cell_order(course: Course, submissions: list[Submission]) -> list[str]:
    """Graded cells in the order the lessons show them."""
    from compatlab.grader.course import read_master

    order = []
    for assignment in sorted({s.assignment for s in submissions}):
        order += [cell.id for cell in read_master(course.master(assignment)).cells
                  if cell.metadata.get("nbgrader", {}).get("grade")]
    return order


def _gradebook_url(work: Path) -> str:
    # workers share the gradebook: wait up to 10 minutes for another's write lock
    return f"sqlite:///{work / 'gradebook.db'}?timeout=600"


def _autograde(course: Course, work: Path, todo: list[Submission],
               new_lessons: list[str], console: Console, workers: int, sandboxed: bool, cell_timeout: int) -> None:
    for sub in todo:
        target = work / "submitted" / sub.student / sub.assignment
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shutil.copy2(sub.folder / f"{sub.assignment}.ipynb", target)
    paths = dict(root=work, source_directory=course.solutions, release_directory=work / "release",
                 submitted_directory=work / "submitted", autograded_directory=work / "autograded",
                 feedback_directory=work / "feedback", solution_directory=work / "solution",
                 db_url=_gradebook_url(work))

    saved = dict(os.environ)
    box_root, bridges = work / "sandbox", None
    try:
        # our own engines, never a COMPATLAB_ENGINES set from outside: the sandboxes reach only
        # loopback ports, and grades must not depend on someone else's engine
        os.environ.pop(ENGINES_VARIABLE, None)
        shutil.rmtree(box_root, ignore_errors=True)
        box = sandbox.prepare(box_root) if sandboxed else None
        # what the workers inherit: the guarded kernel first in JUPYTER_PATH, the sandboxes' sockets
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [str(sandbox.kernelspec_dir(box_root, sandboxed))] + [p for p in [saved.get("JUPYTER_PATH")] if p])
        if box:
            os.environ["JUPYTER_RUNTIME_DIR"] = str(box.runtime)
        with GradingPool(course, paths, workers, cell_timeout, box_root if sandboxed else None) as pool:
            engines = lab_engines()  # the unpaced profiles, shared by every kernel (see LESSON_ENGINES)
            env = {ENGINES_VARIABLE: json.dumps(engines), **engine_env(engines["ollama"])}
            if box:
                box = replace(box, bridges=tuple(urlsplit(url).port for url in engines.values()))
                env.update(sandbox.settings_env(box))
                bridges = sandbox.EngineBridges(box)
            by_job = {(sub.assignment, sub.student): sub for sub in todo}
            columns = (TextColumn("grading {task.description:<32}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
            with Progress(*columns, console=console, transient=False) as progress:
                task = progress.add_task(f"with {workers} worker{'s' * (workers > 1)}", total=len(todo))
                for job, problem in pool.grade(env, new_lessons, list(by_job)):
                    by_job[job].problem = problem
                    progress.update(task, advance=1, description=job[1])
    finally:
        if bridges:
            bridges.stop()
        stop_lab_engines()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(box_root, ignore_errors=True)  # the kernels' private homes


def grades_frame(submissions: list[Submission], order: list[str]) -> pd.DataFrame:
    """One row per submission; one column per graded cell, in points."""
    cells = [name for name in order if any(name in sub.cells for sub in submissions)]
    rows = []
    for sub in submissions:
        row = {"student": sub.student, "assignment": sub.assignment, "score": sub.score,
               "max_score": sub.max_score, "status": sub.status}
        row.update({name: sub.cells.get(name, (None, None))[0] for name in cells})
        rows.append(row)
    return pd.DataFrame(rows)


def _write_outputs(out: Path, work: Path, submissions: list[Submission], order: list[str]) -> None:
    from compatlab.grader.feedback import test_results, write_feedback
    from compatlab.grader.report import write_report

    grades = grades_frame(submissions, order)
    grades.to_csv(out / "grades.csv", index=False)
    feedback = out / "feedback"
    shutil.rmtree(feedback, ignore_errors=True)
    for sub in submissions:
        notebook = work / "autograded" / sub.student / sub.assignment / f"{sub.assignment}.ipynb"
        if sub.score is not None and notebook.is_file():
            results = test_results(nbformat.read(notebook, as_version=4), sub.cells)
            write_feedback(feedback / sub.student / sub.assignment / f"{sub.assignment}.html",
                           sub.student, sub.assignment, results)
    top = {name: most for sub in submissions for name, (_, most) in sub.cells.items()}
    cell_max = {name: top[name] for name in order if name in top}
    write_report(out / "report.html", grades, cell_max, feedback)


def print_table(submissions: list[Submission], console: Console) -> None:
    table = Table(title="compatlab grades")
    for name, justify in (("student", "left"), ("assignment", "left"), ("score", "right"), ("%", "right"),
                          ("status", "left")):
        table.add_column(name, justify=justify)
    for sub in submissions:
        graded = sub.score is not None and sub.max_score
        table.add_row(sub.student, sub.assignment,
                      f"{sub.score:g} / {sub.max_score:g}" if graded else "-",
                      f"{100 * sub.score / sub.max_score:.0f}" if graded else "-",
                      sub.status if sub.problem else "[green]graded[/]")
    console.print(table)


def run_grade(folder: str, out: str, workers: int | None = None, sandboxed: bool = True,
              cell_timeout: int = 30) -> int:
    console = Console()
    if workers is not None and workers < 1:
        print(f"compatlab grade: --workers must be at least 1, not {workers}", file=sys.stderr)
        return EXIT_USAGE
    try:
        submissions = grade_class(Path(folder).resolve(), Path(out).resolve(), workers=workers,
                                  sandboxed=sandboxed, cell_timeout=cell_timeout)
    except UsageError as exc:
        print(f"compatlab grade: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GradingError as exc:
        print(f"compatlab grade: {exc} (log: {Path(out) / 'nbgrader' / 'grading.log'})", file=sys.stderr)
        return EXIT_NOT_GRADED
    print_table(submissions, console)
    failed = [s for s in submissions if s.problem]
    console.print(f"wrote {Path(out) / 'grades.csv'}, {Path(out) / 'report.html'} and {Path(out) / 'feedback'}/")
    if failed:
        console.print(f"[red]{len(failed)} of {len(submissions)} submissions could not be graded[/]")
        return EXIT_NOT_GRADED
    return EXIT_GRADED
