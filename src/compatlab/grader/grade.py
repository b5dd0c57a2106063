"""`compatlab grade SUBMISSIONS_DIR --out DIR`: autograde a class with nbgrader, then report.

SUBMISSIONS_DIR holds `<student>/<assignment>/<assignment>.ipynb`, nbgrader's submitted/
layout. Nothing in it is modified, and nothing in it is trusted (intake.py): each notebook is
read without following links, checked, and rewritten into DIR/nbgrader/, an nbgrader course
whose source is solutions/ and which no student code ever sees. nbgrader grades there; only
the Execute step runs in a sandbox (sandboxed_execute.py). nbgrader exits 0 when tests fail, so
scores are read from its gradebook; "graded" means nbgrader produced a score, whatever it is.
"""

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from rich.console import Console
from rich.table import Table

from compatlab.grader import gradebook, integrity, sandbox, strict
from compatlab.grader.autograde import Autograder, gradebook_url
from compatlab.grader.course import Course, read_master
from compatlab.grader.intake import Submission, UsageError, find_submissions, write_notebook
from compatlab.grader.safe_text import cell, console as markup_safe, plain, spreadsheet
from compatlab.grader.workers import GradingError

if TYPE_CHECKING:  # pandas only where tables are written: a check writes none
    import pandas as pd

EXIT_GRADED, EXIT_NOT_GRADED, EXIT_USAGE = 0, 1, 2
STATE_FILE = "state.json"  # what the last run graded: lesson masters' and submissions' digests
PENDING_FILE = "manual-grades-pending.json"  # manual grades on their way back to a regraded lesson

__all__ = ["Submission", "UsageError", "grade_class", "print_table", "run_grade"]


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to a file: nbgrader, SQLAlchemy and every sandbox write their
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


@dataclass(frozen=True)
class Selection:
    """Which of a folder's submissions this run grades (--assignment, --student); empty: all.
    The others keep whatever an earlier run into the same --out gave them."""

    assignments: tuple[str, ...] = ()
    students: tuple[str, ...] = ()

    def pick(self, found: list[Submission], folder: Path) -> list[Submission]:
        for kind, wanted, have in (("assignment", self.assignments, {s.assignment for s in found}),
                                   ("student", self.students, {s.student for s in found})):
            if missing := [name for name in wanted if name not in have]:
                raise UsageError(f"no submission of {kind} {plain(missing[0], 100)!r} in {folder}")
        return [s for s in found if (not self.assignments or s.assignment in self.assignments)
                and (not self.students or s.student in self.students)]


def grade_class(folder: Path, out: Path, course: Course = Course(), console: Console | None = None,
                workers: int | None = None, sandboxed: bool = True,
                limits: sandbox.Limits = sandbox.Limits(), check: bool = False,
                selection: Selection = Selection(), due: dict[str, datetime.datetime] | None = None,
                cluster: str = "") -> list[Submission]:
    """Autograde every submission in folder (or the `selection` of them) with `workers` processes
    (default: autograde.default_workers()); write DIR/grades.csv, grades-<lesson>.csv, the LMS exports,
    feedback/ and report.html. nbgrader's own log goes to DIR/nbgrader/grading.log. A second run
    into the same DIR grades only new or changed submissions, and keeps what it does not see; a
    changed lesson master (or due date: `due`, lesson -> UTC) regrades that lesson, keeping the
    manual grades and comments given in formgrader (gradebook.py). `check`: as `compatlab check`
    wants it, one worker in this process (no process to start, nothing imported twice) and none of
    those tables and pages, which it does not show; the grading itself is the same. `cluster`: a
    Dask scheduler's address; its workers run the sandboxes (cluster.py), everything else runs here."""
    console = console or Console()
    submissions = selection.pick(find_submissions(folder, course.assignments()), folder)
    if cluster and not sandboxed:
        raise UsageError("--cluster always sandboxes student code (on the workers): drop --no-sandbox")
    if sandboxed and not cluster and (problem := sandbox.unavailable()):
        raise UsageError(f"cannot sandbox student code: {problem}")
    work = out / "nbgrader"
    url, course_id = gradebook_url(work), course.course_id()
    state = _load_state(out / STATE_FILE)
    if not (work / "gradebook.db").is_file():  # nothing to keep: start afresh
        shutil.rmtree(work, ignore_errors=True)
        state = {"masters": {}, "submissions": {}}
    try:
        pending, pending_dues = gradebook.read_pending(out / PENDING_FILE)  # a run stopped mid-carry-over
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    kept = _graded_before(work, state, {s.key for s in submissions}, course.assignments())
    lessons = {name: Lesson(course, name) for name in sorted({s.assignment for s in submissions + kept
                                                              if not s.problem})}
    # a check's gradebook is a prepared copy with no due dates: not opened for them (time)
    dues = {**pending_dues, **(gradebook.due_dates(url, course_id) if state["masters"] and not check else {}),
            **(due or {})}
    for name in sorted(set(due or ()) - set(lessons)):
        console.print(f"[yellow]--due {markup_safe(name, 60)}: no submission of it in this run or before; "
                      "give it again with its submissions[/]")
    masters = {name: _with_due(lesson.digest, dues.get(name)) for name, lesson in lessons.items()}
    changed = [name for name, digest in masters.items() if state["masters"].get(name, digest) != digest]
    if changed:  # nbgrader cannot change an assignment that has submissions: graded afresh, marks kept
        pending += gradebook.save_marks(url, course_id, changed)
        gradebook.write_pending(out / PENDING_FILE, pending,
                                {**pending_dues, **{name: dues[name] for name in changed if name in dues}})
        for name in changed:  # written before the gradebook changes: a stopped run leaves them "new"
            del state["masters"][name]
        state["submissions"] = {key: digest for key, digest in state["submissions"].items()
                                if key.partition("/")[2] not in changed}
        (out / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))
        gradebook.drop_assignments(url, course_id, changed)
    submissions += kept
    work.mkdir(parents=True, exist_ok=True)
    kept_keys = {s.key for s in kept}
    graded_as = {s.key: s.fingerprint if s.key in kept_keys else _graded_as(s.fingerprint, limits)
                 for s in submissions}
    # also anything whose autograded notebook is gone (nbgrader's own autograde, refused, removes it first)
    todo = [s for s in submissions if not s.problem and (state["submissions"].get(s.key) != graded_as[s.key]
                                                         or not _autograded(work, s).is_file())]
    todo_keys = {s.key for s in todo}
    for sub in submissions:
        try:
            if sub.notebook is not None:
                sub.review = [str(f) for f in lessons[sub.assignment].scan(sub.notebook)] + sub.review
            if sub.key in todo_keys and sub.key not in kept_keys:  # rewritten where only the grader writes
                target = work / "submitted" / sub.student / sub.assignment
                shutil.rmtree(target, ignore_errors=True)
                write_notebook(sub.notebook, target, sub.assignment, sub.timestamp, sub.secret)
        except Exception as exc:  # noqa: BLE001 -- one submission's problem, never the class's
            sub.problem = f"could not be prepared for grading ({type(exc).__name__})"
            todo_keys.discard(sub.key)
        sub.notebook = None
    todo = [sub for sub in todo if sub.key in todo_keys]
    new_lessons = [name for name in masters if name not in state["masters"]]
    with stderr_to(work / "grading.log"):
        if todo or new_lessons:  # else nothing changed since the last run: no engines, no workers
            with Autograder(course, work, console, 1 if check else workers, sandboxed, limits,
                            in_process=check, cluster=cluster) as grader:
                grader.grade(todo, new_lessons, {name: dues[name] for name in new_lessons if name in dues}, console)
        _read_scores(url, course, submissions)
    _read_runtime_notes(work, submissions)
    if pending:
        _carry_marks(url, course_id, pending, submissions, dues, out, console)
        _read_scores(url, course, [s for s in submissions if s.score is not None])
    reused = sum(1 for s in submissions if s.score is not None and s.key not in todo_keys)
    if reused:
        console.print(f"{len(todo)} submissions graded now; {reused} unchanged since the last run into "
                      f"{markup_safe(str(out), None)} kept their grades")
    if kept:
        console.print(f"{len(kept)} of those are not in this run ({markup_safe(str(folder), None)}, or not selected): "
                      "graded by an earlier run into the same --out, they stay in its tables, report and feedback")
    state["masters"].update(masters)
    state["submissions"] = {s.key: graded_as[s.key] for s in submissions if s.score is not None and not s.problem}
    (out / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))
    if not check:
        _write_formgrader_config(work, course)
        _write_outputs(out, work, submissions, lessons, course)
    return submissions


def _graded_as(fingerprint: str, limits: sandbox.Limits) -> str:
    """A submission's state: its digest, and whether its demonstrations ran (--run-demos), so that
    asking for them grades it again (for their outputs in the autograded notebook)."""
    return hashlib.sha256(f"{fingerprint} with demos".encode()).hexdigest() if limits.run_demos else fingerprint


def _with_due(digest: str, due: datetime.datetime | None) -> str:
    """A lesson's state: its master's digest, and its due date when it has one (a new due date
    changes who is late, so the lesson is graded again)."""
    return digest if due is None else hashlib.sha256(f"{digest} due {due.isoformat()}".encode()).hexdigest()


def _carry_marks(url: str, course_id: str, pending: list, submissions: list[Submission], dues: dict,
                 out: Path, console: Console) -> None:
    """Put the saved marks back on the submissions graded now; a mark of a submission not graded
    in this run (its lesson not in it, or its grading failed) stays pending for the next."""
    graded = {(s.student, s.assignment) for s in submissions if s.score is not None}
    present = {(s.student, s.assignment) for s in submissions}
    lessons = {s.assignment for s in submissions}
    now = [m for m in pending if (m.student, m.assignment) in graded]
    gone = [m for m in pending if m.assignment in lessons and (m.student, m.assignment) not in present]
    waiting = [m for m in pending if m not in now and m not in gone]
    lost = gradebook.restore_marks(url, course_id, now) + gone
    gradebook.record_marks(out / "manual-grades.json", [m for m in now if m not in lost], lost)
    if waiting:
        gradebook.write_pending(out / PENDING_FILE, waiting, {m.assignment: dues[m.assignment] for m in waiting
                                                              if m.assignment in dues})
    else:
        (out / PENDING_FILE).unlink(missing_ok=True)
    console.print(f"{len(now) - len(lost)} manual grades and comments kept on the regraded lessons "
                  "(formgrader shows them as needing a look)"
                  + (f"; {len(waiting)} wait for their submissions to be graded" if waiting else ""))
    for mark in lost:
        console.print(f"[yellow]a manual mark of {markup_safe(mark.student, 60)} on {markup_safe(mark.cell, 60)} "
                      f"({markup_safe(mark.assignment, 60)}) has no cell or submission left: it is kept in "
                      f"{markup_safe(str(out / 'manual-grades.json'), None)}[/]")


class Lesson:
    """What grading needs to know of one lesson's master: its test cells and its own code."""

    def __init__(self, course: Course, name: str) -> None:
        master = course.master(name)
        self.digest = hashlib.sha256(master.read_bytes()).hexdigest()
        notebook = read_master(master)
        meta = [(c, c.metadata.get("nbgrader", {})) for c in notebook.cells if c.cell_type == "code"]
        self.graded = [c.id for c, m in meta if m.get("grade")]
        self.locked = {m["grade_id"] for _, m in meta if m.get("locked") and m.get("grade_id")}
        tests = [c.source for c, m in meta if m.get("grade") and not m.get("solution")]
        # as written, and as run (strict.py rewrites them): either can be copied into a message
        self.test_lines = [line.strip() for source in tests for text in (source, strict.rewrite(source))
                           for line in text.splitlines()]
        self.names = integrity.lesson_bindings([c.source for c, m in meta if m.get("locked")])
        self.test_names = integrity.names_read([c.source for c, m in meta if m.get("grade") and not m.get("solution")])
        release = course.lessons / name / f"{name}.ipynb"
        self.released = frozenset(line.strip() for c in nbformat.read(release, as_version=4).cells
                                  if c.cell_type == "code" for line in c.source.splitlines()) \
            if release.is_file() else frozenset()

    def scan(self, notebook) -> list[integrity.Finding]:
        ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells]
        learner = {i for i, grade_id in enumerate(ids) if grade_id not in self.locked}
        deleted = [integrity.Finding(grade_id, 0, "this test cell was deleted; nbgrader put it back")
                   for grade_id in self.graded if grade_id not in ids]
        return deleted + integrity.scan(notebook, learner, self.names, self.released, self.test_names)


def _load_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
        return {"masters": dict(state["masters"]), "submissions": dict(state["submissions"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {"masters": {}, "submissions": {}}


def _graded_before(work: Path, state: dict, present: set[str], assignments: list[str]) -> list[Submission]:
    """What an earlier run into this --out graded that is not in this run's folder (a late
    hand-in graded on its own, say): kept, so that no run loses grades, feedback or review notes
    it did not see. Read from the copy only the grader wrote (work/submitted), never the student's."""
    kept = []
    for key, digest in state["submissions"].items():
        student, _, assignment = key.partition("/")
        if key in present or assignment not in assignments:
            continue
        copy = work / "submitted" / student / assignment / f"{assignment}.ipynb"
        try:  # for the review scan; without it the grades and feedback are still kept
            notebook = nbformat.read(copy, as_version=4) if copy.is_file() else None
        except Exception:  # noqa: BLE001 -- a damaged copy loses its scan, never the class's run
            notebook = None
        notes = [_small_file(copy.parent / name) for name in ("timestamp.txt", "submission_secret.txt")]
        kept.append(Submission(student, assignment, fingerprint=digest, notebook=notebook, timestamp=notes[0],
                               secret=notes[1]))
    return kept


def _small_file(path: Path) -> str:
    """A file the grader wrote itself (intake checked its text first), or ""."""
    try:
        return path.read_text().strip() if path.is_file() and not path.is_symlink() else ""
    except (OSError, UnicodeDecodeError):
        return ""


def _read_scores(db_url: str, course: Course, submissions: list[Submission]) -> None:
    """Each graded submission's points, its cells' points, and when it came and was due. The
    score is nbgrader's after its late-submission penalty, as `nbgrader export` gives it."""
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
            sub.late_penalty = record.late_submission_penalty or 0.0
            sub.score, sub.max_score = max(0.0, record.score - sub.late_penalty), record.max_score
            sub.submitted_at, sub.due, sub.seconds_late = record.timestamp, record.duedate, record.total_seconds_late
            if sub.due is not None and sub.submitted_at is None and NO_TIMESTAMP not in sub.review:
                sub.review.append(NO_TIMESTAMP)
            for notebook in record.notebooks:
                for grade in notebook.grades:
                    sub.cells[grade.name] = (grade.score, grade.max_score)


NO_TIMESTAMP = ("the lesson has a due date but this submission has no timestamp.txt (nbgrader's submit "
                "writes one): it cannot be marked late")


def _autograded(work: Path, sub: Submission) -> Path:
    return work / "autograded" / sub.student / sub.assignment / f"{sub.assignment}.ipynb"


def _read_runtime_notes(work: Path, submissions: list[Submission]) -> None:
    """What the guard and the runner noted while the notebook ran (in the autograded notebook,
    which only the grader wrote), after the integrity scan's findings."""
    for sub in submissions:
        path = _autograded(work, sub)
        if sub.score is not None and path.is_file():
            notes = nbformat.read(path, as_version=4).metadata.get("compatlab", {}).get("review", [])
            sub.review += [plain(str(note), 300) for note in notes]


def column(lesson: str, grade_id: str) -> str:
    """grades.csv's name for a test cell: two lessons can have test cells of the same grade_id."""
    return f"{lesson}/{grade_id}"


def grades_frame(submissions: list[Submission], cells: dict[str, list[str]], qualify: bool = True) -> "pd.DataFrame":
    """One row per submission; one column per test cell of each lesson (cells: lesson -> grade_ids),
    in points, named `<lesson>/<grade_id>`, or by grade_id alone for one lesson's table (qualify=False);
    the review notes last."""
    import pandas as pd

    rows = []
    for sub in submissions:
        row = {"student": sub.student, "assignment": sub.assignment, "score": sub.score,
               "max_score": sub.max_score, "status": sub.status, "submitted_at": _utc(sub.submitted_at),
               "due": _utc(sub.due), "late": late_words(sub.seconds_late), "late_penalty": sub.late_penalty}
        for lesson, names in cells.items():
            row.update({column(lesson, name) if qualify else name:
                        sub.cells.get(name, (None, None))[0] if sub.assignment == lesson else None for name in names})
        row["review"] = "; ".join(sub.review)
        rows.append(row)
    return pd.DataFrame(rows)


def _utc(when: datetime.datetime | None) -> str:
    return f"{when:%Y-%m-%d %H:%M:%S} UTC" if when is not None else ""


def late_words(seconds: float) -> str:
    """How late, as a person says it: "" when on time (or not known to be late)."""
    if not seconds:
        return ""
    minutes = max(1, round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes)
    return "late by " + " ".join(parts[:2])


def late_policy(course: Course) -> str:
    """nbgrader's late-submission policy for this course, named as its setting reads."""
    method = course.config().LateSubmissionPlugin.get("penalty_method", "none")
    return {"none": "late submissions are marked, not penalised (nbgrader's LateSubmissionPlugin.penalty_method = 'none')",
            "zero": "a late submission scores 0 (nbgrader's LateSubmissionPlugin.penalty_method = 'zero')"}.get(
        method, f"nbgrader's LateSubmissionPlugin.penalty_method = {plain(str(method), 40)!r}")


def _write_formgrader_config(work: Path, course: Course) -> None:
    """DIR/nbgrader/nbgrader_config.py: nbgrader's own tools on this gradebook. formgrader (a
    Jupyter server started in this folder), `nbgrader export`, `nbgrader db` read it."""
    settings = {"course_id": course.course_id(), "root": str(work), "source_directory": str(course.solutions),
                "release_directory": "release", "submitted_directory": "submitted",
                "autograded_directory": "autograded", "feedback_directory": "feedback",
                "solution_directory": "solution", "db_url": f"sqlite:///{work / 'gradebook.db'}"}
    from compatlab.grader.refusals import config_lines

    lines = [f"c.CourseDirectory.{name} = {value!r}" for name, value in settings.items()]
    (work / "nbgrader_config.py").write_text(
        "# Written by `compatlab grade` at each run: nbgrader's own tools (formgrader, `nbgrader export`,\n"
        "# `nbgrader db`) on the gradebook it keeps here. Manual grades given there survive every rerun.\n"
        "# nbgrader's autograde and generate_feedback refuse here (compatlab/grader/refusals.py).\n"
        "c = get_config()  # noqa: F821\n" + "\n".join(lines + config_lines()) + "\n")


def _release_layout(work: Path, sub: Submission, page: Path) -> None:
    """The feedback page where `nbgrader release_feedback` looks for it, with the two files it
    reads beside it: only for a submission that came through nbgrader's exchange (it has both)."""
    if not (sub.timestamp and sub.secret):
        return
    folder = work / "feedback" / sub.student / sub.assignment
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(page, folder / page.name)
    (folder / "timestamp.txt").write_text(sub.timestamp)
    (folder / "submission_secret.txt").write_text(sub.secret)


def _write_outputs(out: Path, work: Path, submissions: list[Submission], lessons: dict[str, Lesson],
                   course: Course) -> None:
    from compatlab.grader.feedback import grader_secrets, write_feedback
    from compatlab.grader.lms import write_lms_exports
    from compatlab.grader.report import LessonResults, write_report

    assignments = course.assignments()

    cells = {name: lesson.graded for name, lesson in lessons.items()}
    grades = grades_frame(submissions, cells)
    grades.map(spreadsheet).to_csv(out / "grades.csv", index=False)
    results = {}
    for name in assignments:  # the course's lessons only: an unreadable student folder has assignment "-"
        (out / f"grades-{name}.csv").unlink(missing_ok=True)  # a lesson no longer in the class: no stale table
        mine = [sub for sub in submissions if sub.assignment == name]
        if not mine:
            continue
        frame = grades_frame(mine, {name: cells.get(name, [])}, qualify=False)
        frame.map(spreadsheet).to_csv(out / f"grades-{name}.csv", index=False)
        top = {cell: most for sub in mine for cell, (_, most) in sub.cells.items()}
        results[name] = LessonResults(frame, {cell: top[cell] for cell in cells.get(name, []) if cell in top})
    feedback = out / "feedback"
    for folder in (feedback, work / "feedback"):  # both are only ever written here, from scratch
        shutil.rmtree(folder, ignore_errors=True)
    secrets = grader_secrets(os.environ)
    for sub in submissions:
        if sub.score is not None and (tests := submission_results(work, sub, lessons[sub.assignment], secrets)) is not None:
            page = feedback / sub.student / sub.assignment / f"{sub.assignment}.html"
            write_feedback(page, sub.student, sub.assignment, tests, late_words(sub.seconds_late), sub.late_penalty)
            _release_layout(work, sub, page)
            for test in tests:  # the redacted message the student sees, for the report's "most common"
                if not test["passed"]:
                    results[sub.assignment].failures.setdefault(test["name"], []).append(test["message"])
    write_lms_exports(out, submissions, assignments, gradebook.students(gradebook_url(work), course.course_id()))
    write_report(out / "report.html", grades, results, feedback, late_policy(course))


def submission_results(work: Path, sub: Submission, lesson: Lesson, secrets: list[str]) -> list[dict] | None:
    """Each test cell's verdict for one graded submission, as its feedback shows it: name,
    points, message (redacted) and the known mistakes it looks like; None if it was not graded."""
    from compatlab.grader.feedback import test_results
    from compatlab.grader.mistakes import annotate

    notebook = _autograded(work, sub)
    if sub.score is None or not notebook.is_file():
        return None
    return annotate(test_results(nbformat.read(notebook, as_version=4), sub.cells, lesson.test_lines, secrets),
                    sub.assignment)


def print_table(submissions: list[Submission], console: Console) -> None:
    table = Table(title="compatlab grades")
    for name, justify in (("student", "left"), ("assignment", "left"), ("score", "right"), ("%", "right"),
                          ("status", "left")):
        table.add_column(name, justify=justify)
    for sub in submissions:
        graded = sub.score is not None and sub.max_score
        table.add_row(cell(sub.student, 40), cell(sub.assignment, 40),
                      f"{sub.score:g} / {sub.max_score:g}" if graded else "-",
                      f"{100 * sub.score / sub.max_score:.0f}" if graded else "-",
                      cell(sub.status, 300) if sub.problem else "[green]graded[/]")
    console.print(table)
    flagged = [sub for sub in submissions if sub.review]
    if flagged:
        console.print(f"[yellow]{len(flagged)} submission{'s' * (len(flagged) > 1)} need review[/] "
                      "(scores unchanged; grades.csv's review column and the report list each finding):")
        for sub in flagged:
            console.print(f"  {markup_safe(sub.key, 80)}: {markup_safe(sub.review[0], 200)}"
                          + (f" (and {len(sub.review) - 1} more)" if len(sub.review) > 1 else ""))


def parse_due(text: str, lessons: list[str]) -> tuple[str, datetime.datetime]:
    """`--due LESSON=WHEN`, WHEN as nbgrader reads a due date ("2026-12-10 17:00:00 UTC", ISO 8601;
    without a zone, UTC): (lesson, the time in UTC)."""
    from nbgrader.utils import parse_utc

    lesson, equals, when = text.partition("=")
    if not equals or lesson not in lessons:
        raise UsageError(f"--due takes LESSON=WHEN with a lesson of this course ({', '.join(lessons)}), "
                         f"e.g. {lessons[0]}='2026-12-10 17:00 UTC'; not {plain(text, 80)!r}")
    try:
        return lesson, parse_utc(when.strip())
    except (ValueError, OverflowError, TypeError):
        raise UsageError(f"--due {plain(lesson, 80)}: {plain(when, 80)!r} is not a date and time, "
                         "e.g. '2026-12-10 17:00 UTC'") from None


def run_grade(folder: str, out: str, workers: int | None = None, sandboxed: bool = True,
              cell_timeout: int = 30, notebook_timeout: int = 600, assignments: list[str] | None = None,
              students: list[str] | None = None, due: list[str] | None = None, cluster: str = "",
              run_demos: bool = False) -> int:
    console = Console()
    for name, value in (("--workers", workers), ("--cell-timeout", cell_timeout),
                        ("--notebook-timeout", notebook_timeout)):
        if value is not None and value < 1:
            print(f"compatlab grade: {name} must be at least 1, not {value}", file=sys.stderr)
            return EXIT_USAGE
    limits = sandbox.Limits(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout, run_demos=run_demos)
    selection = Selection(tuple(dict.fromkeys(assignments or ())), tuple(dict.fromkeys(students or ())))
    try:
        dues = dict(parse_due(text, Course().assignments()) for text in due or ())
        submissions = grade_class(Path(folder).resolve(), Path(out).resolve(), workers=workers,
                                  sandboxed=sandboxed, limits=limits, selection=selection, due=dues,
                                  cluster=cluster)
    except UsageError as exc:
        print(f"compatlab grade: {plain(str(exc), 2000)}", file=sys.stderr)
        return EXIT_USAGE
    except GradingError as exc:
        print(f"compatlab grade: {plain(str(exc), 2000)} (log: {Path(out) / 'nbgrader' / 'grading.log'})",
              file=sys.stderr)
        return EXIT_NOT_GRADED
    print_table(submissions, console)
    failed = [s for s in submissions if s.problem]
    console.print(f"wrote {markup_safe(str(Path(out) / 'grades.csv'), None)} (and grades-<lesson>.csv, "
                  "lms-canvas.csv, lms-moodle.csv), "
                  f"{markup_safe(str(Path(out) / 'report.html'), None)} and {markup_safe(str(Path(out) / 'feedback'), None)}/")
    if failed:
        console.print(f"[red]{len(failed)} of {len(submissions)} submissions could not be graded[/]")
        return EXIT_NOT_GRADED
    return EXIT_GRADED
