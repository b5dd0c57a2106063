"""`check()`: the last cell of every lesson. It grades the notebook as saved, exactly as
`compatlab check` (and so `compatlab grade`) would, and shows the verdicts inline.

It runs `compatlab check --json` in a process of its own: the grading sandbox, not this kernel,
runs the tests, and their code never comes here. In a classroom (COMPATLAB_CHECK_URL set) the
learner has no hidden tests at all: the notebook goes to the class's check service, which runs
that same command as the instructor (grader/check_service.py). It says when what it graded is not what the
learner ran: an answer cell saved in a version this kernel never ran means unsaved edits.
While the notebook is itself being graded, or run by nbgrader's Validate (which sets
NBGRADER_EXECUTION), it does nothing.
"""

import html
import json
import os
import subprocess
import sys
import time
from pathlib import Path

GRADING_VARIABLE = "COMPATLAB_GUARD"  # set in every grading kernel (grader/kernel.py)
SERVICE_VARIABLE = "COMPATLAB_CHECK_URL"  # a classroom's check service (README, "Running a classroom")


def check(exercise: str | None = None, notebook: str | None = None) -> None:
    """Grade this notebook as saved and show each test's verdict; `exercise` (e.g. "read_usage")
    shows only that exercise's tests."""
    from IPython.display import display

    if os.environ.get(GRADING_VARIABLE) or os.environ.get("NBGRADER_EXECUTION"):
        print("check() does nothing while the notebook is being graded or validated.")
        return
    path = Path(notebook) if notebook else _this_notebook()
    if path is None:
        print("check() could not find this notebook's file. Pass it, check(notebook='tolerant-client.ipynb'),\n"
              "or run `compatlab check <path to the notebook>` in a terminal.")
        return
    print(f"Checking {path.name} as saved {_age(path)} …", flush=True)
    report = _from_service(path, exercise) if os.environ.get(SERVICE_VARIABLE) else _from_command(path, exercise)
    if report is None:
        return
    if "error" in report:
        print(f"compatlab check: {report['error']}")
        return
    unsaved = unsaved_answers(path)
    display({"text/html": as_html(report, unsaved), "text/plain": as_text(report, unsaved)}, raw=True)


def _from_command(path: Path, exercise: str | None) -> dict | None:
    command = [sys.executable, "-m", "compatlab", "check", str(path), "--json"]
    if exercise:
        command += ["--exercise", exercise]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"compatlab check failed (exit {done.returncode}): {done.stderr.strip()[-1500:]}")
        return None


def _from_service(path: Path, exercise: str | None) -> dict | None:
    """The class's check service's verdicts: COMPATLAB_CHECK_URL is `unix:/path/to/socket` (a
    classroom's: a folder only the service can write) or http://host:port."""
    import re

    import httpx

    where = os.environ[SERVICE_VARIABLE]
    if where.startswith("unix:"):
        client = httpx.Client(transport=httpx.HTTPTransport(uds=where.removeprefix("unix:")), timeout=1800)
        url = "http://check/check"
    else:
        client, url = httpx.Client(timeout=1800), where.rstrip("/") + "/check"
    params = {"notebook": path.name, **({"exercise": exercise} if exercise else {})}
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}", path.parent.name):  # only a hint of which lesson
        params["folder"] = path.parent.name
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    try:
        with client:
            report = client.post(url, params=params, content=path.read_bytes(),
                                 headers={"Authorization": f"token {token}"} if token else {}).json()
    except (httpx.HTTPError, ValueError, OSError) as exc:
        print(f"the class's check service ({where}) did not answer ({type(exc).__name__}): ask your instructor")
        return None
    if not isinstance(report, dict) or not ("error" in report or {"status", "results", "hidden_tests"} <= report.keys()):
        print(f"the class's check service ({where}) gave an answer that is not a check's: ask your instructor")
        return None
    return report


def _this_notebook() -> Path | None:
    # jupyter_server tells a notebook's kernel its path, relative to where the server started
    session = os.environ.get("JPY_SESSION_NAME", "")
    candidates = [Path(session)] if session.endswith(".ipynb") else []
    candidates += [Path.cwd() / f"{Path.cwd().name}.ipynb"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
        if (Path.cwd() / candidate.name).is_file():
            return (Path.cwd() / candidate.name).resolve()
    return None


def _age(path: Path) -> str:
    seconds = time.time() - path.stat().st_mtime
    return "just now" if seconds < 60 else f"{int(seconds // 60)} min ago"


def unsaved_answers(path: Path) -> list[str]:
    """The answer cells whose saved source this kernel never ran, when it has run any."""
    try:
        from IPython import get_ipython

        ran = {source.strip() for source in get_ipython().user_ns.get("In", [])}
        import nbformat

        saved = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 -- outside IPython, or an unreadable file: nothing to compare
        return []
    if len(ran) < 2:
        return []
    return [meta["grade_id"] for c in saved.cells if c.cell_type == "code"
            and (meta := c.metadata.get("nbgrader", {})).get("solution") and not meta.get("grade")
            and c.source.strip() and c.source.strip() not in ran]


def _note_lines(report: dict, unsaved: list[str]) -> list[str]:
    notes = [f"the saved {name} is not a version you ran in this session: save (Ctrl+S) and check again "
             "to grade the one on your screen" for name in unsaved]
    if not report["hidden_tests"]:
        notes.append("this course keeps its hidden tests for grading: these are the visible tests only")
    return notes + list(report["differences"])


def as_text(report: dict, unsaved: list[str]) -> str:
    if report["status"] != "graded":
        return f"not graded: {report['status']}"
    lines = [f"{'✓' if r['passed'] else '✗'} {r['name']}  {(r['score'] or 0):g}/{r['max']:g}  {r['message']}"
             + "".join(f"\n    likely mistake: {advice}" for advice in r["likely"]) for r in report["results"]]
    lines.append(f"{report['score']:g} of {report['max_score']:g} points, as `compatlab grade` would give")
    return "\n".join(lines + [f"note: {note}" for note in _note_lines(report, unsaved)])


def as_html(report: dict, unsaved: list[str]) -> str:
    esc = html.escape
    if report["status"] != "graded":
        return f"<p><b>Not graded</b>: {esc(report['status'])}</p>"
    rows = "".join(
        f"<tr><td>{'✓' if r['passed'] else '✗'}</td><td><code>{esc(r['name'])}</code></td>"
        f"<td style='text-align:right'>{(r['score'] or 0):g} / {r['max']:g}</td>"
        f"<td style='text-align:left'>{esc(r['message'])}"
        + "".join(f"<br><i>Likely mistake:</i> {esc(advice)}" for advice in r["likely"]) + "</td></tr>"
        for r in report["results"])
    notes = "".join(f"<li>{esc(note)}</li>" for note in _note_lines(report, unsaved))
    return (f"<table><tr><th></th><th>test</th><th>points</th><th style='text-align:left'>what it said</th></tr>"
            f"{rows}</table><p><b>{report['score']:g} of {report['max_score']:g} points</b>, as "
            f"<code>compatlab grade</code> would give this notebook as saved.</p>" + (f"<ul>{notes}</ul>" if notes else ""))
