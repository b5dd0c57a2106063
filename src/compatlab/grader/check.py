"""`compatlab check NOTEBOOK`: one learner's notebook graded exactly as `compatlab grade` would.

The notebook is copied into a class of one and graded by grade_class itself (intake, the
sandbox, nbgrader, the hidden tests, the feedback's redaction), so the verdicts, points and
messages are the grader's own. What the learner sees is the feedback's: test names, points,
messages and the known mistakes they look like, never the tests' code. For speed, a check
grades in its own process, writes none of grade's tables and pages, and finds its lessons
prepared for nbgrader already (prepared.py): a fresh sandbox per notebook all the same.

An instructor turns the hidden tests off for a course with one line in
grader/nbgrader_config.py, `c.CompatlabCheck.hidden_tests = False`: check then grades against
the lesson without its hidden tests (the visible ones only) and says so.
"""

import io
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from rich.console import Console
from rich.table import Table

from compatlab.grader import prepared, sandbox
from compatlab.grader.course import Course
from compatlab.grader.feedback import grader_secrets
from compatlab.grader.grade import Lesson, grade_class, submission_results
from compatlab.grader.intake import UsageError
from compatlab.grader.safe_text import cell, console as markup_safe, plain
from compatlab.grader.workers import GradingError

LEARNER = "you"  # the student id a check grades under
HIDDEN_BLOCK = re.compile(r"^### BEGIN HIDDEN TESTS$.*?^### END HIDDEN TESTS$\n?", re.M | re.S)
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass
class CheckReport:
    lesson: str
    hidden_tests: bool  # False: the course turned them off, and only the visible tests ran
    status: str  # "graded", or why the notebook could not be graded
    score: float | None = None
    max_score: float | None = None
    results: list[dict] = field(default_factory=list)  # as feedback.test_results, with "likely"
    differences: list[str] = field(default_factory=list)  # where the graded notebook is not the learner's

    @property
    def passed(self) -> bool:
        return self.status == "graded" and all(r["passed"] for r in self.results)


def hidden_tests_on(course: Course) -> bool:
    return bool(course.config().get("CompatlabCheck", {}).get("hidden_tests", True))


def lesson_of(path: Path, course: Course) -> str:
    names = course.assignments()
    for guess in (path.stem, path.parent.name):
        if guess in names:
            return guess
    raise UsageError(f"cannot tell which lesson {path.name} is: keep the lesson's name, <lesson>.ipynb, or pass "
                     f"--lesson (one of: {', '.join(names)})")


def visible_only(course: Course, lessons: list[str], root: Path) -> Course:
    """A copy of the course whose masters for `lessons` have no hidden tests; everything else
    of solutions/ (the course file, the other lessons) linked as it is."""
    (root / "grader").mkdir(parents=True)
    shutil.copy(course.config_file, root / "grader" / course.config_file.name)
    (root / "lessons").symlink_to(course.lessons)
    (root / "solutions").mkdir()
    for entry in course.solutions.iterdir():
        if entry.name not in lessons:
            (root / "solutions" / entry.name).symlink_to(entry)
    for lesson in lessons:
        (root / "solutions" / lesson).mkdir()
        master = HIDDEN_BLOCK.sub("", course.master(lesson).read_text())
        (root / "solutions" / lesson / f"{lesson}.py").write_text(master)
    return Course(root)


def edited_lesson_cells(notebook_path: Path, course: Course, lesson: str) -> list[str]:
    """The lesson's own cells (set-up, tests) the learner changed: grading runs the originals."""
    release = course.lessons / lesson / f"{lesson}.ipynb"
    try:
        mine = nbformat.read(notebook_path, as_version=4)
        theirs = nbformat.read(release, as_version=4)
    except Exception:  # noqa: BLE001 -- intake reports an unreadable notebook in its own words
        return []
    originals = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in theirs.cells
                 if c.metadata.get("nbgrader", {}).get("locked")}
    return [f"you changed the lesson's cell {grade_id}: grading runs the lesson's own version"
            for c in mine.cells if (grade_id := c.get("metadata", {}).get("nbgrader", {}).get("grade_id")) in originals
            and grade_id is not None and c.get("source") != originals[grade_id]]


def check_notebooks(paths: list[Path], lesson: str | None = None, course: Course = Course(),
                    sandboxed: bool = True, limits: sandbox.Limits = sandbox.Limits()) -> list[CheckReport]:
    """Grade each notebook as its own student of a class (one class: one set of engines), its
    lessons prepared once per master (prepared.py)."""
    paths = [path.resolve() for path in paths]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"no such notebook: {path}")
    lessons = [lesson or lesson_of(path, course) for path in paths]
    for name in lessons:
        if name not in course.assignments():
            raise UsageError(f"no lesson called {name!r} (one of: {', '.join(course.assignments())})")
    hidden = hidden_tests_on(course)
    students = [LEARNER] if len(paths) == 1 else [f"{LEARNER}-{n}" for n in range(1, len(paths) + 1)]
    with tempfile.TemporaryDirectory(prefix="compatlab-check-") as tmp:
        tmp = Path(tmp)
        for path, student, name in zip(paths, students, lessons):
            (tmp / "submitted" / student / name).mkdir(parents=True)
            shutil.copyfile(path, tmp / "submitted" / student / name / f"{name}.ipynb")
        graded = course if hidden else visible_only(course, sorted(set(lessons)), tmp / "course")
        masters = {name: Lesson(graded, name) for name in set(lessons)}  # once per lesson, not per notebook
        prepared.seed(graded, {name: lesson.digest for name, lesson in masters.items()}, tmp / "out")
        subs = {(s.student, s.assignment): s for s in grade_class(
            tmp / "submitted", tmp / "out", graded, console=Console(file=io.StringIO()),
            sandboxed=sandboxed, limits=limits, check=True)}
        secrets = grader_secrets(os.environ)
        reports = []
        for path, student, name in zip(paths, students, lessons):
            sub = subs[(student, name)]
            results = submission_results(tmp / "out" / "nbgrader", sub, masters[name], secrets)
            differences = edited_lesson_cells(path, course, name)
            differences += [note for note in sub.review if note not in differences]
            reports.append(CheckReport(name, hidden, sub.status, sub.score, sub.max_score, results or [], differences))
    return reports


def only(report: CheckReport, exercise: str | None) -> list[dict]:
    """The results of one exercise's tests (test_<exercise> and test_<exercise>_…), or all."""
    if not exercise:
        return report.results
    return [r for r in report.results if r["name"] == f"test_{exercise}" or r["name"].startswith(f"test_{exercise}_")]


def print_report(report: CheckReport, console: Console, exercise: str | None = None) -> None:
    if report.status != "graded":
        console.print(f"[red]not graded[/]: {markup_safe(report.status, 500)}")
        return
    table = Table(title=f"compatlab check: {report.lesson}" + ("" if report.hidden_tests else " (visible tests only)"))
    for name, justify in (("test", "left"), ("result", "left"), ("points", "right"), ("what it said", "left")):
        table.add_column(name, justify=justify)
    for r in only(report, exercise):
        message = cell(r["message"], 600) + "".join(f"\n[yellow]likely mistake:[/] {cell(a, 400)}" for a in r["likely"])
        table.add_row(cell(r["name"], 60), "[green]passed[/]" if r["passed"] else "[red]failed[/]",
                      f"{(r['score'] or 0):g} / {r['max']:g}", message)
    console.print(table)
    console.print(f"[bold]{report.score:g} of {report.max_score:g} points[/]: what `compatlab grade` would give "
                  "this notebook as saved" + ("" if report.hidden_tests else
                                              " on the visible tests; this course keeps the hidden ones for grading"))
    for note in report.differences:
        console.print(f"[yellow]note[/]: {markup_safe(note, 300)}")


def run_check(notebooks: list[str], lesson: str | None = None, as_json: bool = False, sandboxed: bool = True,
              exercise: str | None = None) -> int:
    try:
        reports = check_notebooks([Path(n) for n in notebooks], lesson, sandboxed=sandboxed)
    except (UsageError, GradingError) as exc:
        if as_json:
            print(json.dumps({"error": plain(str(exc), 2000)}))
        else:
            print(f"compatlab check: {plain(str(exc), 2000)}", file=sys.stderr)
        return EXIT_USAGE
    for report in reports:
        if as_json:  # one line per notebook
            print(json.dumps({**asdict(report), "results": only(report, exercise)}))
        else:
            print_report(report, Console(), exercise)
    return EXIT_PASSED if all(report.passed for report in reports) else EXIT_FAILED
