"""report.html: how a class did, for the instructor, as one self-contained page."""

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the figures only go into the page
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def pass_rates(grades: pd.DataFrame, cell_max: dict[str, float]) -> pd.Series:
    """Share of graded submissions that got full points on each graded cell."""
    graded = grades[grades["score"].notna()]
    return pd.Series({name: float((graded[name] >= top).mean()) if len(graded) else 0.0
                      for name, top in cell_max.items()}, dtype=float)


def _pass_rate_figure(rates: pd.Series) -> str:
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(rates) + 1))
    ax.barh(rates.index[::-1], rates.values[::-1] * 100, color="#5b8fd6")
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of submissions with full points")
    ax.set_title("Pass rate per exercise")
    return _png(fig)


def _histogram_figure(grades: pd.DataFrame) -> str:
    graded = grades[grades["score"].notna() & (grades["max_score"] > 0)]
    percent = 100 * graded["score"] / graded["max_score"]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(percent, bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.001], color="#7fbf7f", edgecolor="white")
    ax.set_xlabel("score (%)")
    ax.set_ylabel("submissions")
    ax.set_title("Score distribution")
    return _png(fig)


def write_report(path: Path, grades: pd.DataFrame, cell_max: dict[str, float], feedback: Path) -> None:
    rates = pass_rates(grades, cell_max)
    rows, review = [], []
    for row in grades.itertuples(index=False):
        page = feedback / row.student / row.assignment / f"{row.assignment}.html"
        link = f'<a href="{html.escape(str(page.relative_to(path.parent)))}">feedback</a>' if page.is_file() else ""
        score = f"{row.score:g} / {row.max_score:g}" if pd.notna(row.score) else "-"
        rows.append(f"<tr><td>{html.escape(row.student)}</td><td>{html.escape(row.assignment)}</td>"
                    f"<td class=num>{score}</td><td>{html.escape(row.status)}</td><td>{link}</td></tr>")
        if row.review:
            notes = "".join(f"<li>{html.escape(note)}</li>" for note in row.review.split("; "))
            review.append(f"<tr><td>{html.escape(row.student)}</td><td>{html.escape(row.assignment)}</td>"
                          f"<td><ul>{notes}</ul></td></tr>")
    figures = ""
    if len(rates):
        figures = (f'<img alt="pass rate per exercise" src="{_pass_rate_figure(rates)}">'
                   f'<img alt="score distribution" src="{_histogram_figure(grades)}">')
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
<p>{len(grades)} submissions, {int(grades["score"].notna().sum())} graded.</p>
{figures}
{flagged}
<h2>Submissions</h2>
<table><tr><th>student</th><th>assignment</th><th>score</th><th>status</th><th></th></tr>
{"".join(rows)}</table>
</body></html>
""")
