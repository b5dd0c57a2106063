"""`compatlab grade` among nbgrader's own tools: the exchange, formgrader and the gradebook.

Real nbgrader commands (release_assignment, fetch_assignment, submit, collect, release_feedback,
fetch_feedback) on a real exchange folder, and formgrader's API in a real Jupyter server: the
learner's timestamps reach the gradebook and make a submission late; feedback released with
nbgrader's own command is compatlab's (no test code); manual grades and comments given in
formgrader survive a changed master; grading a subset keeps everyone else; LMS exports.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from compatlab.grader.course import REPO
from support import free_port

SAMPLE = REPO / "data" / "sample-class" / "submitted"
LESSON = "first-contact"
RIGHT = SAMPLE / "reference-solution" / LESSON / f"{LESSON}.ipynb"
WRONG = SAMPLE / "ndjson-skips-bad-lines" / LESSON / f"{LESSON}.ipynb"  # loses test_parse_ndjson's 2 points
BIN = Path(sys.executable).parent


def run(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})})
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def compatlab_grade(*args: str, course: Path | None = None, expect: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "compatlab", "grade", *args], capture_output=True, text=True,
                          timeout=900, cwd=REPO, env={**os.environ, **({"COMPATLAB_COURSE": str(course)} if course else {})})
    assert done.returncode == expect, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def hidden_lines() -> list[str]:
    master = (REPO / "solutions" / LESSON / f"{LESSON}.py").read_text()
    block = master.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("assert")]


def test_a_late_resubmission_through_nbgrader_exchange_is_graded_and_its_feedback_released(tmp_path):
    """One learner (this machine's user: nbgrader's student id is the login) and the instructor,
    each with nbgrader's own commands; compatlab grade between collect and release_feedback."""
    exchange, course, learner, out = (tmp_path / name for name in ("exchange", "course", "learner", "graded"))
    exchange.mkdir(mode=0o777)
    exchange.chmod(0o777)
    (course / "release" / LESSON).mkdir(parents=True)
    shutil.copy(REPO / "lessons" / LESSON / f"{LESSON}.ipynb", course / "release" / LESSON)
    settings = {"Exchange.root": exchange, "CourseDirectory.course_id": "compatlab", "CourseDirectory.root": course,
                "CourseDirectory.feedback_directory": out / "nbgrader" / "feedback"}
    (course / "nbgrader_config.py").write_text("c = get_config()\n" + "".join(
        f"c.{name} = {str(value)!r}\n" for name, value in settings.items()))
    learner.mkdir()
    (learner / "nbgrader_config.py").write_text("c = get_config()\n" + "".join(
        f"c.{name} = {str(settings[name])!r}\n" for name in ("Exchange.root", "CourseDirectory.course_id")))
    own = {"JUPYTER_DATA_DIR": str(learner / ".data")}  # the learner's nbgrader_cache: their secrets
    run("nbgrader", "release_assignment", LESSON, "--force", cwd=course)
    run("nbgrader", "fetch_assignment", LESSON, cwd=learner, env=own)
    fetched = learner / LESSON / f"{LESSON}.ipynb"
    assert fetched.is_file()
    shutil.copy(WRONG, fetched)  # a first try with a known mistake, then the right answer
    run("nbgrader", "submit", LESSON, cwd=learner, env=own)
    time.sleep(1.1)  # nbgrader names submissions by the second
    shutil.copy(RIGHT, fetched)
    run("nbgrader", "submit", LESSON, cwd=learner, env=own)
    run("nbgrader", "collect", LESSON, "--update", cwd=course)
    student = os.listdir(course / "submitted")[0]
    timestamp = (course / "submitted" / student / LESSON / "timestamp.txt").read_text()
    compatlab_grade(str(course / "submitted"), "--out", str(out), "--due", f"{LESSON}=2026-01-01 09:00 UTC")
    row = rows(out / "grades.csv")[student]
    assert float(row["score"]) == 15.0, row  # the second submission: nbgrader's collect keeps the latest
    assert row["submitted_at"].startswith(timestamp[:19]) and row["due"] == "2026-01-01 09:00:00 UTC"
    assert row["late"].startswith("late by ") and float(row["late_penalty"]) == 0.0
    report = (out / "report.html").read_text()
    assert "late by" in report and "penalty_method = &#x27;none&#x27;" in report
    # nbgrader's release_feedback and fetch_feedback carry compatlab's page: verdicts, no test code
    run("nbgrader", "release_feedback", LESSON, cwd=course)
    run("nbgrader", "fetch_feedback", LESSON, cwd=learner, env=own)
    [page] = (learner / LESSON / "feedback").glob("*/*.html")
    text = page.read_text()
    assert "15 of 15 points" in text and "after the due date" in text and "test_parse_ndjson" in text
    assert not [line for line in hidden_lines() if line in text] and "HIDDEN TESTS" not in text


@pytest.fixture
def class_of_two(tmp_path) -> tuple[Path, Path]:
    """A course of its own (the master can be edited) and two submissions, bob's with a timestamp."""
    course = tmp_path / "course"
    (course / "grader").mkdir(parents=True)
    shutil.copy(REPO / "grader" / "nbgrader_config.py", course / "grader")
    shutil.copytree(REPO / "solutions", course / "solutions", ignore=shutil.ignore_patterns("*.ipynb"))
    (course / "lessons").symlink_to(REPO / "lessons")
    folder = tmp_path / "submitted"
    for student, notebook in (("ann", RIGHT), ("bob", WRONG)):
        (folder / student / LESSON).mkdir(parents=True)
        shutil.copy(notebook, folder / student / LESSON)
    (folder / "bob" / LESSON / "timestamp.txt").write_text("2026-03-02 10:00:00.000000 UTC")
    return course, folder


@pytest.fixture
def formgrader():
    """A Jupyter server with nbgrader's formgrader, started in a folder (its nbgrader_config.py)."""
    servers = []

    def start(folder: Path) -> httpx.Client:
        port, token = free_port(), "compatlab-formgrader-test"
        servers.append(subprocess.Popen(
            [str(BIN / "jupyter"), "server", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}"],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}))
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"token {token}"},
                              timeout=30)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if client.get("/formgrader/api/status").status_code == 200:
                    return client
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("formgrader did not answer")

    yield start
    for server in servers:
        server.terminate()
        server.wait(15)


def _grades(client: httpx.Client, student: str) -> dict[str, dict]:
    notebooks = client.get(f"/formgrader/api/submitted_notebooks/{LESSON}/{LESSON}").json()
    [mine] = [n for n in notebooks if n["student"] == student]
    grades = client.get("/formgrader/api/grades", params={"submission_id": mine["id"]}).json()
    comments = client.get("/formgrader/api/comments", params={"submission_id": mine["id"]}).json()
    return {g["name"]: g for g in grades} | {f"comment:{c['name']}": c for c in comments}


def test_manual_grades_survive_a_changed_master_and_a_subset_keeps_everyone(class_of_two, formgrader):
    course, folder = class_of_two
    out = folder.parent / "graded"
    compatlab_grade(str(folder), "--out", str(out), course=course)
    assert {s: float(r["score"]) for s, r in rows(out / "grades.csv").items()} == {"ann": 15.0, "bob": 13.0}
    # formgrader, from the config the grader wrote, lists the lesson; the instructor gives bob a
    # point back on the test he failed and a comment on his answer
    client = formgrader(out / "nbgrader")
    assert LESSON in [a["name"] for a in client.get("/formgrader/api/assignments").json()]
    grades = _grades(client, "bob")
    assert grades["test_parse_ndjson"]["auto_score"] == 0
    reply = client.put(f"/formgrader/api/grade/{grades['test_parse_ndjson']['id']}",
                       json={"manual_score": 1.0, "extra_credit": 0.5})
    assert reply.status_code == 200, reply.text
    [comment] = [key for key in grades if key.startswith("comment:parse_ndjson")]
    assert client.put(f"/formgrader/api/comment/{grades[comment]['id']}",
                      json={"manual_comment": "Close: a line cut short must raise."}).status_code == 200
    # the lesson's master changes by one line: the lesson is graded afresh, the marks come back
    master = course / "solutions" / LESSON / f"{LESSON}.py"
    master.write_text(master.read_text() + "\n# %% [markdown]\n# One more line of explanation.\n")
    done = compatlab_grade(str(folder), "--out", str(out), course=course)
    assert "2 manual grades and comments kept" in done.stdout, done.stdout
    assert float(rows(out / "grades.csv")["bob"]["score"]) == 14.5  # 13 + 1 + 0.5 extra credit
    grades = _grades(client, "bob")
    assert (grades["test_parse_ndjson"]["manual_score"], grades["test_parse_ndjson"]["extra_credit"]) == (1.0, 0.5)
    assert grades[comment]["manual_comment"] == "Close: a line cut short must raise."
    [carried] = json.loads((out / "manual-grades.json").read_text())["carry_overs"]
    assert {m["cell"] for m in carried["kept"]} == {"test_parse_ndjson", comment.removeprefix("comment:")}
    assert carried["lost"] == [] and not (out / "manual-grades-pending.json").exists()
    # a subset: only ann, changed, is graded; bob keeps his grade, manual marks and feedback
    shutil.copy(WRONG, folder / "ann" / LESSON)
    done = compatlab_grade(str(folder), "--out", str(out), "--student", "ann", course=course)
    graded = rows(out / "grades.csv")
    assert (float(graded["ann"]["score"]), float(graded["bob"]["score"])) == (13.0, 14.5), graded
    assert (out / "feedback" / "bob" / LESSON / f"{LESSON}.html").is_file()
    assert "1 of those are not in this run" in done.stdout
    # formgrader's own Autograde (student code outside the sandbox) and Generate feedback (hidden
    # tests in the page) refuse, saying what to run; the next compatlab run regrades what the
    # refused autograde removed, manual marks and all
    done = client.post(f"/formgrader/api/submission/{LESSON}/bob/autograde").json()
    assert not done["success"] and "outside compatlab's sandbox" in json.dumps(done), done
    done = client.post(f"/formgrader/api/assignment/{LESSON}/generate_feedback").json()
    assert not done["success"] and "shows the hidden tests" in json.dumps(done), done
    assert not [line for page in (out / "nbgrader").rglob("*.html") for line in hidden_lines() if line in page.read_text()]
    compatlab_grade(str(folder), "--out", str(out), "--student", "ann", course=course)
    assert float(rows(out / "grades.csv")["bob"]["score"]) == 14.5
    assert (out / "nbgrader" / "autograded" / "bob" / LESSON / f"{LESSON}.ipynb").is_file()
    compatlab_grade(str(folder), "--out", str(out), "--student", "carol", course=course, expect=2)
    compatlab_grade(str(folder), "--out", str(out), "--assignment", "tolerant-client", course=course, expect=2)
    # LMS exports: one row per learner, one column per lesson
    with open(out / "lms-canvas.csv", newline="") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", LESSON]
    assert canvas[1][0] == "Points Possible" and canvas[1][5] == "15"
    assert {row[3]: row[5] for row in canvas[2:]} == {"ann": "13", "bob": "14.5"}
    with open(out / "lms-moodle.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [["Username", "Email address", LESSON], ["ann", "", "13"], ["bob", "", "14.5"]]


def test_a_regrade_stopped_midway_loses_no_manual_grade_or_due_date(class_of_two):
    """The master changes, and the run that regrades it fails after the lesson was taken out of
    the gradebook (here: a master nbgrader cannot prepare): the marks and the due date wait in
    manual-grades-pending.json, and the next good run puts them back."""
    from compatlab.grader.gradebook import open_gradebook

    course, folder = class_of_two
    out = folder.parent / "graded"
    compatlab_grade(str(folder), "--out", str(out), "--due", f"{LESSON}=2026-03-01 10:00 UTC", course=course)
    url = f"sqlite:///{out / 'nbgrader' / 'gradebook.db'}"
    with open_gradebook(url, "compatlab") as gradebook:
        gradebook.find_grade("test_parse_ndjson", LESSON, LESSON, "bob").manual_score = 2.0
        gradebook.db.commit()
    master = course / "solutions" / LESSON / f"{LESSON}.py"
    good = master.read_text()
    ids = [line for line in good.splitlines() if '"grade_id": "test_gaps"' in line]
    master.write_text(good.replace('"grade_id": "test_ttft"', '"grade_id": "test_gaps"', 1))  # two cells, one id
    assert ids, "the master's metadata moved: fix this test's way of breaking it"
    done = compatlab_grade(str(folder), "--out", str(out), course=course, expect=1)
    assert "could not prepare" in done.stderr
    assert (out / "manual-grades-pending.json").is_file()
    master.write_text(good + "\n# %% [markdown]\n# Fixed.\n")
    compatlab_grade(str(folder), "--out", str(out), course=course)
    graded = rows(out / "grades.csv")
    assert float(graded["bob"]["score"]) == 15.0 and graded["bob"]["due"] == "2026-03-01 10:00:00 UTC"
    assert graded["bob"]["late"] == "late by 1 d" and not (out / "manual-grades-pending.json").exists()


def test_a_late_submission_gets_the_course_late_policy(class_of_two):
    course, folder = class_of_two
    config = course / "grader" / "nbgrader_config.py"
    config.write_text(config.read_text() + "\nc.LateSubmissionPlugin.penalty_method = 'zero'\n")
    out = folder.parent / "graded"
    compatlab_grade(str(folder), "--out", str(out), "--due", f"{LESSON}=2026-03-01 10:00", course=course)
    graded = rows(out / "grades.csv")
    assert (float(graded["bob"]["score"]), float(graded["bob"]["late_penalty"])) == (0.0, 13.0)
    assert graded["bob"]["late"] == "late by 1 d" and graded["bob"]["submitted_at"] == "2026-03-02 10:00:00 UTC"
    # ann has no timestamp.txt: never late, and the instructor is told why
    assert float(graded["ann"]["score"]) == 15.0 and graded["ann"]["late"] == ""
    assert "no timestamp.txt" in graded["ann"]["review"]
    assert "a late submission scores 0" in (out / "report.html").read_text()
    page = (out / "feedback" / "bob" / LESSON / f"{LESSON}.html").read_text()
    assert "late by 1 d after the due date: 13 points off, so 0 of 15" in page
    # the due date is kept in the gradebook: the next run, without --due, still has it; a new one
    # regrades the lesson
    compatlab_grade(str(folder), "--out", str(out), course=course)
    assert rows(out / "grades.csv")["bob"]["late"] == "late by 1 d"
    compatlab_grade(str(folder), "--out", str(out), "--due", f"{LESSON}=2026-03-03 10:00 UTC", course=course)
    assert (float(rows(out / "grades.csv")["bob"]["score"]), rows(out / "grades.csv")["bob"]["late"]) == (13.0, "")
    bad = compatlab_grade(str(folder), "--out", str(out), "--due", f"{LESSON}=next tuesday-ish", course=course,
                          expect=2)
    assert "is not a date and time" in bad.stderr
