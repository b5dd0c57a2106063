"""What the instructor keeps in nbgrader's gradebook, which no rerun of `compatlab grade` may lose.

DIR/nbgrader/gradebook.db is nbgrader's, and an instructor works in it with nbgrader's own tools:
formgrader's manual grades, extra credit and comments, due dates, students' names. A changed
lesson master cannot be regraded in place (nbgrader refuses to change an assignment's cells
while it has submissions), so its assignment is taken out and graded afresh: what a person put
there is saved first (`ManualMarks`) and put back on the same cells afterwards, and the due date
with it. The saved marks and due dates are written down (DIR/manual-grades-pending.json) before
anything is taken out, and stay there until they are back on their cells: a run that fails or is
stopped in between loses nothing, the next run puts them back. Every carry-over is added to
DIR/manual-grades.json, for the record, with the marks whose cell the new master no longer has.
"""

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path


@dataclass(frozen=True)
class Mark:
    """One cell's manual grade, extra credit or comment, as formgrader wrote it."""

    student: str
    assignment: str
    notebook: str
    cell: str
    manual_score: float | None = None
    extra_credit: float | None = None
    comment: str | None = None


def open_gradebook(db_url: str, course_id: str):
    from nbgrader.api import Gradebook

    return Gradebook(db_url, course_id)


def due_dates(db_url: str, course_id: str) -> dict[str, datetime]:
    """Each assignment's due date (UTC, naive as nbgrader keeps it), where one is set."""
    with open_gradebook(db_url, course_id) as gradebook:
        return {a.name: a.duedate for a in gradebook.assignments if a.duedate is not None}


def set_due_dates(db_url: str, course_id: str, dates: dict[str, datetime]) -> None:
    with open_gradebook(db_url, course_id) as gradebook:
        for name, when in dates.items():
            gradebook.update_or_create_assignment(name, duedate=when)


def save_marks(db_url: str, course_id: str, assignments: list[str]) -> list[Mark]:
    """Every manual grade, extra credit and comment a person gave on these assignments."""
    from nbgrader.api import MissingEntry

    marks = []
    with open_gradebook(db_url, course_id) as gradebook:
        for name in assignments:
            try:
                assignment = gradebook.find_assignment(name)
            except MissingEntry:
                continue
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    where = (submission.student.id, name, notebook.name)
                    marks += [Mark(*where, grade.name, manual_score=grade.manual_score, extra_credit=grade.extra_credit)
                              for grade in notebook.grades
                              if grade.manual_score is not None or grade.extra_credit is not None]
                    marks += [Mark(*where, comment.name, comment=comment.manual_comment)
                              for comment in notebook.comments if comment.manual_comment is not None]
    return marks


def restore_marks(db_url: str, course_id: str, marks: list[Mark]) -> list[Mark]:
    """Put saved marks back on the same cells; return those whose cell or submission is gone."""
    from nbgrader.api import MissingEntry

    lost = []
    with open_gradebook(db_url, course_id) as gradebook:
        for mark in marks:
            where = (mark.cell, mark.notebook, mark.assignment, mark.student)
            try:
                if mark.comment is not None:
                    gradebook.find_comment(*where).manual_comment = mark.comment
                    continue
                grade = gradebook.find_grade(*where)
            except MissingEntry:
                lost.append(mark)
                continue
            grade.manual_score, grade.extra_credit = mark.manual_score, mark.extra_credit
            grade.needs_manual_grade = True  # as nbgrader marks a regraded cell with a manual grade: look again
        gradebook.db.commit()
    return lost


def record_marks(path: Path, kept: list[Mark], lost: list[Mark]) -> None:
    """One carry-over more in the instructor's record: what came back, and what had no cell left."""
    try:
        history = json.loads(path.read_text())["carry_overs"]
    except (OSError, ValueError, KeyError, TypeError):
        history = []
    history.append({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "kept": [asdict(mark) for mark in kept], "lost": [asdict(mark) for mark in lost]})
    path.write_text(json.dumps({"carry_overs": history}, indent=1))


def write_pending(path: Path, marks: list[Mark], dues: dict[str, datetime]) -> None:
    """The marks and due dates of lessons about to be graded afresh, until they are back."""
    path.write_text(json.dumps({"marks": [asdict(mark) for mark in dict.fromkeys(marks)],
                                "dues": {name: when.isoformat() for name, when in dues.items()}}, indent=1))


def read_pending(path: Path) -> tuple[list[Mark], dict[str, datetime]]:
    try:
        data = json.loads(path.read_text())
        return ([Mark(**mark) for mark in data["marks"]],
                {name: datetime.fromisoformat(when) for name, when in data["dues"].items()})
    except FileNotFoundError:
        return [], {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} cannot be read ({type(exc).__name__}): it holds manual grades waiting to be "
                         "put back; repair or move it, then run again") from None


def drop_assignments(db_url: str, course_id: str, assignments: list[str]) -> None:
    """Take these assignments out, with their submissions, to be prepared and graded afresh."""
    from nbgrader.api import MissingEntry

    with open_gradebook(db_url, course_id) as gradebook:
        for name in assignments:
            try:
                gradebook.remove_assignment(name)
            except MissingEntry:
                pass


@dataclass(frozen=True)
class Lateness:
    submitted_at: datetime | None
    due: datetime | None
    seconds_late: float
    penalty: float


def lateness(db_url: str, course_id: str) -> dict[tuple[str, str], Lateness]:
    """(student, assignment) -> when it was submitted, when it was due, how late, the penalty
    nbgrader's late-submission plugin gave it."""
    with open_gradebook(db_url, course_id) as gradebook:
        return {(s.student.id, s.assignment.name): Lateness(s.timestamp, s.duedate, s.total_seconds_late,
                                                            s.late_submission_penalty or 0.0)
                for a in gradebook.assignments for s in a.submissions}


def students(db_url: str, course_id: str) -> dict[str, dict]:
    """What the gradebook knows of each student (names, e-mail, LMS id), for LMS exports."""
    with open_gradebook(db_url, course_id) as gradebook:
        return {s.id: {"first_name": s.first_name or "", "last_name": s.last_name or "", "email": s.email or "",
                       "lms_user_id": s.lms_user_id or ""} for s in gradebook.students}
