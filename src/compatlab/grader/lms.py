"""Grades out to a learning-management system: one row per learner, one column per lesson.

`compatlab grade` writes both files beside grades.csv at every run:

- lms-canvas.csv, laid out as Canvas's own gradebook export is (Student, ID, SIS User ID, SIS
  Login ID, Section, then a column per assignment, and a "Points Possible" row first). The
  learner's id (their hub or Unix login) goes in SIS Login ID, nbgrader's `lms_user_id` (set with
  `nbgrader db student add --lms-user-id`) in SIS User ID; Canvas's own ID stays empty.
- lms-moodle.csv for Moodle's CSV grade import, which has no fixed column names: on its preview
  page map "Username" (or "Email address") to the user field and each lesson to a grade item.
  "-" is Moodle's "no grade"; a lesson the learner never handed in is left that way.

A score is nbgrader's after its late-submission penalty, in points. A submission that could not
be graded has no score here: the instructor decides, as grades.csv's status column says why.
"""

import csv
from pathlib import Path

from compatlab.grader.intake import Submission
from compatlab.grader.safe_text import spreadsheet

CANVAS_FIRST = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def write_lms_exports(out: Path, submissions: list[Submission], lessons: list[str], people: dict[str, dict]) -> None:
    scores, most = {}, {}
    for sub in submissions:
        if sub.assignment in lessons and sub.score is not None:
            scores.setdefault(sub.student, {})[sub.assignment] = f"{sub.score:g}"
            most[sub.assignment] = f"{sub.max_score:g}"
    learners = sorted({sub.student for sub in submissions if sub.assignment in lessons})
    graded = [lesson for lesson in lessons if lesson in most]

    def person(student: str) -> dict:
        return people.get(student, {})

    canvas = [CANVAS_FIRST + graded, ["Points Possible", "", "", "", ""] + [most[lesson] for lesson in graded]]
    for student in learners:
        name = ", ".join(part for part in (person(student).get("last_name"), person(student).get("first_name")) if part)
        canvas.append([name or student, "", person(student).get("lms_user_id", ""), student, ""]
                      + [scores.get(student, {}).get(lesson, "") for lesson in graded])
    moodle = [["Username", "Email address"] + graded]
    moodle += [[student, person(student).get("email", "")] + [scores.get(student, {}).get(lesson, "-") for lesson in graded]
               for student in learners]
    for name, rows in (("lms-canvas.csv", canvas), ("lms-moodle.csv", moodle)):
        with open(out / name, "w", newline="") as handle:
            csv.writer(handle).writerows([[spreadsheet(value) for value in row] for row in rows])
