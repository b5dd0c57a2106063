"""`compatlab demo` (`make demo`), the main job: grade the sample class on the lab engine.

It runs `compatlab grade` on data/sample-class/submitted, writes the report under build/demo,
and checks every student's score against the band in data/sample-class/manifest.toml.
"""

from pathlib import Path

from rich.console import Console

from compatlab.grader.course import Course
from compatlab.grader.grade import grade_class, print_table
from compatlab.grader.release import sample_class
from compatlab.grader.safe_text import console as console_text


def run_demo(out: Path | None = None, console: Console | None = None) -> int:
    course = Course()
    console = console or Console(width=None if Console().is_terminal else 130)
    out = out or course.root / "build" / "demo"
    submissions_dir = course.root / "data" / "sample-class" / "submitted"
    console.print(f"Grading the sample class in {submissions_dir.relative_to(course.root)} with nbgrader, "
                  "against lab engines (profiles ollama, ollama-legacy, llamacpp, vllm) …")
    submissions = grade_class(submissions_dir, out, course, console)
    print_table(submissions, console)
    bands = {(s.name, s.assignment): s for s in sample_class(course)}
    landed = 0
    for sub in submissions:
        expected = bands.get((sub.student, sub.assignment))
        if expected and sub.score is not None and expected.band[0] <= sub.score <= expected.band[1]:
            landed += 1
        else:
            band = f"{expected.band[0]:g}-{expected.band[1]:g}" if expected else "none"
            console.print(f"[red]{console_text(sub.key)}: score {sub.score} is outside its band {band} "
                          f"({console_text(sub.status)})[/]")
    console.print(f"Report: {out / 'report.html'}   grades: {out / 'grades.csv'}   feedback: {out / 'feedback'}/")
    console.print(f"{landed} of {len(submissions)} submissions landed in their expected score band.")
    return 0 if landed == len(submissions) else 1
