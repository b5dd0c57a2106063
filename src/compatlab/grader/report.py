"""report.html: how a class did, lesson by lesson, for the instructor, as one self-contained page.

Each lesson's section is computed over that lesson's graded submissions only. Its failure
messages are the ones the feedback pages show, already stripped of test code and the grader's
secrets by feedback.py; they are still text a submission controls, so they are shortened and
escaped here like every other name on the page.
"""

import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from compatlab.grader.figures import pass_rate_chart, score_histogram
from compatlab.grader.safe_text import plain

SHOWN = 200  # characters of a failure message: enough to recognise it, short enough for a table


@dataclass
class LessonResults:
    grades: pd.DataFrame  # the lesson's submissions, as in grades-<lesson>.csv: test cells by grade_id
    cell_max: dict[str, float]  # grade_id -> its points, in notebook order
    failures: dict[str, list[str]] = field(default_factory=dict)  # grade_id -> one message per failed submission

    @property
    def graded(self) -> pd.DataFrame:
        return self.grades[self.grades["score"].notna()]


def pass_counts(graded: pd.DataFrame, cell_max: dict[str, float]) -> pd.Series:
    """How many of these graded submissions got full points on each test cell."""
    return pd.Series({name: int((pd.to_numeric(graded[name], errors="coerce") >= top).sum())
                      for name, top in cell_max.items()}, dtype=int)


def most_common(messages: list[str]) -> tuple[str, int]:
    """The message most failed submissions share, and how many share it ("", 0 if none failed)."""
    if not messages:
        return "", 0
    return Counter(messages).most_common(1)[0]


def _section(lesson: str, results: LessonResults) -> str:
    name = html.escape(lesson)
    graded = results.graded
    head = f'<section id="lesson-{name}"><h2>{name}</h2>'
    if graded.empty:
        return head + "<p>No submission of this lesson was graded.</p></section>"
    total = len(graded)
    passed = pass_counts(graded, results.cell_max)
    rows = []
    for cell, count in passed.items():
        failed = results.failures.get(cell, [])
        message, seen = most_common(failed)
        shown = html.escape(plain(message, SHOWN)) if message else "<em>(no message)</em>" if seen else ""
        rows.append(f"<tr><td><code>{html.escape(cell)}</code></td><td class=num>{count} / {total}</td>"
                    f"<td class=num>{100 * count / total:.0f} %</td><td>{shown}</td>"
                    f"<td class=num>{f'{seen} of {len(failed)}' if seen else ''}</td></tr>")
    scored = graded[graded["max_score"] > 0]
    percent = 100 * scored["score"] / scored["max_score"]
    summary = (f"{total} of {len(results.grades)} submissions graded; median score {percent.median():.0f} %, "
               f"mean {percent.mean():.0f} %, {int((percent >= 100).sum())} with full marks."
               if len(percent) else f"{total} of {len(results.grades)} submissions graded.")
    return f"""{head}<p>{summary}</p>
<table><tr><th>test</th><th>full points</th><th>pass rate</th><th>most common failure</th>
<th>failed submissions with it</th></tr>
{"".join(rows)}</table>
<img alt="{name}: pass rate per exercise" src="{pass_rate_chart(passed / total, f'{lesson}: pass rate per exercise')}">
<img alt="{name}: score distribution" src="{score_histogram(percent, f'{lesson}: score distribution')}">
</section>"""


def write_report(path: Path, grades: pd.DataFrame, lessons: dict[str, LessonResults], feedback: Path,
                 late_policy: str = "") -> None:
    rows, review = [], []
    for row in grades.itertuples(index=False):
        page = feedback / row.student / row.assignment / f"{row.assignment}.html"
        link = f'<a href="{html.escape(str(page.relative_to(path.parent)))}">feedback</a>' if page.is_file() else ""
        score = f"{row.score:g} / {row.max_score:g}" if pd.notna(row.score) else "-"
        late = getattr(row, "late", "") or ""
        rows.append(f"<tr><td>{html.escape(row.student)}</td><td>{html.escape(row.assignment)}</td>"
                    f"<td class=num>{score}</td><td>{html.escape(row.status)}</td><td>{html.escape(late)}</td>"
                    f"<td>{link}</td></tr>")
        if row.review:
            notes = "".join(f"<li>{html.escape(note)}</li>" for note in row.review.split("; "))
            review.append(f"<tr><td>{html.escape(row.student)}</td><td>{html.escape(row.assignment)}</td>"
                          f"<td><ul>{notes}</ul></td></tr>")
    contents = "".join(f'<li><a href="#lesson-{html.escape(name)}">{html.escape(name)}</a></li>' for name in lessons)
    flagged = ""
    if review:
        flagged = (f"<h2>Needs review ({len(review)})</h2><p>Code that reaches into the grader, found by the "
                   "integrity scan or seen by the kernel's guard. Scores are unchanged; read the cells named."
                   f"</p><table><tr><th>student</th><th>assignment</th><th>findings</th></tr>{''.join(review)}</table>")
    path.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>compatlab grading report</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto}} table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:.3rem .8rem;text-align:left;vertical-align:top}} .num{{text-align:right}}
img{{display:block;margin:1rem 0;max-width:100%}}</style></head><body>
<h1>compatlab grading report</h1>
<p>{len(grades)} submissions, {int(grades["score"].notna().sum())} graded. Each lesson's figures count that
lesson's graded submissions only; a test's pass rate is the share with full points on it.</p>
<ul>{contents}</ul>
{"".join(_section(name, results) for name, results in lessons.items())}
{flagged}
<h2>Submissions</h2>
<p>Late submissions: {html.escape(late_policy)}. A submission is late when nbgrader's timestamp.txt is after
the lesson's due date in the gradebook.</p>
<table><tr><th>student</th><th>assignment</th><th>score</th><th>status</th><th>late</th><th></th></tr>
{"".join(rows)}</table>
</body></html>
""")
