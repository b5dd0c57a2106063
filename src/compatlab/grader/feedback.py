"""Student feedback without the tests' code, the grader's secrets, or anything unreadable.

nbgrader's own feedback is the autograded notebook rendered whole, hidden test code included
(jupyter/nbgrader#917). Ours lists each test cell by name with pass/fail, points and the
message its failure gave: enough to know which protocol behaviour to fix, nothing to copy.

A failure message is text the submission controls: code under test can raise an exception
whose message is a test's source line (readable in the kernel through `In`, frames or
linecache) or an environment variable. So before a message is shown, every line of every test
cell of the lesson that appears in it is replaced, so is every value of the grader's own
environment (none of which reaches a sandbox anyway), control characters go, and the length is
capped. Text encoded past recognition (reversed, base64) is not caught: the integrity scan
flags the code that reads the tests.
"""

import html
import re
from pathlib import Path

import nbformat

from compatlab.grader.safe_text import plain
from compatlab.grader.sandbox import ENVIRONMENT

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MAX_MESSAGE = 600  # characters: a message, not a dump
MIN_LINE = 12  # shorter test lines (`else:`, `try:`) are not worth hiding and would mangle words
HIDDEN = "[test code hidden]"


def grader_secrets(environ) -> list[str]:
    """Values of the grader's environment that a student must never see: everything but the
    few variables kernels are given, long enough to recognise."""
    return sorted({value for name, value in environ.items() if name not in ENVIRONMENT and len(value) >= 8},
                  key=len, reverse=True)


def test_results(notebook: nbformat.NotebookNode, scores: dict[str, tuple[float, float]],
                 test_lines: list[str], secrets: list[str]) -> list[dict]:
    """One entry per graded test cell, in notebook order: name, score, max, passed, message."""
    results = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        name = meta.get("grade_id", "")
        score, most = scores.get(name, (None, float(meta.get("points", 0))))
        results.append({"name": name, "score": score, "max": most, "passed": score is not None and score >= most,
                        "message": redact(failure_message(cell), test_lines, secrets)})
    return results


def failure_message(cell: nbformat.NotebookNode) -> str:
    """What a failing cell said: the exception's type and text (not its traceback, which quotes
    the test's source), or what it wrote to stderr."""
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            ename, evalue = str(output.get("ename", "")), str(output.get("evalue", ""))
            return f"{ename}: {evalue}" if evalue else ename
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stderr":
            return "wrote to stderr: " + str(output.text).strip()
    return ""


def redact(message: str, test_lines: list[str], secrets: list[str]) -> str:
    """The message without test source lines or secrets, control characters or excess length.
    Compared with runs of whitespace collapsed, so re-indenting a line does not hide it."""
    text = ANSI.sub("", message[:20 * MAX_MESSAGE])
    for secret in secrets:
        text = text.replace(secret, "[hidden]")
    text = re.sub(r"\s+", " ", text)
    lines = {re.sub(r"\s+", " ", line.strip()) for line in test_lines}
    for line in sorted((line for line in lines if len(line) >= MIN_LINE), key=len, reverse=True):
        text = text.replace(line, HIDDEN)
    return plain(text.strip(), limit=MAX_MESSAGE)


def _likely(result: dict) -> str:
    return "".join(f"<p class=likely>Likely mistake: {html.escape(advice)}</p>" for advice in result.get("likely", ()))


def write_feedback(path: Path, student: str, assignment: str, results: list[dict], late: str = "",
                   penalty: float = 0.0) -> None:
    """late: how late it came ("late by 2 h"), as grade.late_words says it; penalty: the points
    nbgrader's late-submission policy took off."""
    total = sum(r["score"] or 0 for r in results)
    most = sum(r["max"] for r in results)
    if late:
        late = (f"<p>Submitted {html.escape(late)} after the due date"
                + (f": {penalty:g} points off, so {max(0.0, total - penalty):g} of {most:g}." if penalty else ".")
                + "</p>")
    rows = "".join(
        f"<tr class={'pass' if r['passed'] else 'fail'}><td><code>{html.escape(r['name'])}</code></td>"
        f"<td>{'passed' if r['passed'] else 'failed'}</td>"
        f"<td class=num>{(r['score'] or 0):g} / {r['max']:g}</td><td>{html.escape(r['message'])}{_likely(r)}</td></tr>"
        for r in results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(assignment)}: feedback for {html.escape(student)}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto}} table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:.3rem .8rem;text-align:left;vertical-align:top}} .num{{text-align:right}}
.likely{{margin:.3rem 0 0;color:#555}} .pass td:nth-child(2){{color:#2a7a2a}} .fail td:nth-child(2){{color:#b02a2a;font-weight:bold}}</style></head><body>
<h1>{html.escape(assignment)}</h1>
<p>{html.escape(student)}: <strong>{total:g} of {most:g} points</strong>. Each test below checks one protocol
behaviour; a failed test shows the message its check gave. The tests' code stays with the grader.</p>
{late}<table><tr><th>test</th><th>result</th><th>points</th><th>message</th></tr>
{rows}</table>
</body></html>
""")
