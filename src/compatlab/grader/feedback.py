"""Student feedback without the hidden tests.

nbgrader's own feedback is the autograded notebook rendered whole, hidden test code included
(jupyter/nbgrader#917). Ours lists each test cell by name with pass/fail, points and the
message its failure printed: enough to know which protocol behaviour to fix, nothing to copy.
"""

import html
import re
from pathlib import Path

import nbformat

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_MESSAGE = 600  # characters: a message, not a dump


def test_results(notebook: nbformat.NotebookNode, scores: dict[str, tuple[float, float]]) -> list[dict]:
    """One entry per graded test cell, in notebook order: name, score, max, passed, message."""
    results = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        name = meta.get("grade_id", "")
        score, most = scores.get(name, (None, float(meta.get("points", 0))))
        results.append({"name": name, "score": score, "max": most, "passed": score is not None and score >= most,
                        "message": failure_message(cell)})
    return results


def failure_message(cell: nbformat.NotebookNode) -> str:
    """What a failing cell said: the exception's type and text (not its traceback, which quotes
    the test's source), or what it wrote to stderr."""
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            text = f"{output.ename}: {output.evalue}" if output.evalue else output.ename
            return _clip(ANSI.sub("", text))
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stderr":
            return _clip("wrote to stderr: " + ANSI.sub("", output.text).strip())
    return ""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + " …"


def write_feedback(path: Path, student: str, assignment: str, results: list[dict]) -> None:
    total = sum(r["score"] or 0 for r in results)
    most = sum(r["max"] for r in results)
    rows = "".join(
        f"<tr class={'pass' if r['passed'] else 'fail'}><td><code>{html.escape(r['name'])}</code></td>"
        f"<td>{'passed' if r['passed'] else 'failed'}</td>"
        f"<td class=num>{(r['score'] or 0):g} / {r['max']:g}</td><td>{html.escape(r['message'])}</td></tr>"
        for r in results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(assignment)}: feedback for {html.escape(student)}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto}} table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:.3rem .8rem;text-align:left;vertical-align:top}} .num{{text-align:right}}
.pass td:nth-child(2){{color:#2a7a2a}} .fail td:nth-child(2){{color:#b02a2a;font-weight:bold}}</style></head><body>
<h1>{html.escape(assignment)}</h1>
<p>{html.escape(student)}: <strong>{total:g} of {most:g} points</strong>. Each test below checks one protocol
behaviour; a failed test shows the message its check gave. The tests' code stays with the grader.</p>
<table><tr><th>test</th><th>result</th><th>points</th><th>message</th></tr>
{rows}</table>
</body></html>
""")
