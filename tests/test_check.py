"""`compatlab check` and `check()`: a learner's own verdicts, equal to the grader's.

The whole sample class is checked (two runs at once) and compared, test by test, with what
`compatlab grade` gave it (the session's `graded` fixture): points, verdicts and messages.
"""

import html
import json
import re
import shutil
import stat
import subprocess
import sys
import tomllib

import nbformat
import pytest

from compatlab.grader import prepared
from compatlab.grader.check import check_notebooks, visible_only
from compatlab.grader.course import REPO, Course
from compatlab.grader.grade import Lesson
from support import free_port

SAMPLE = REPO / "data" / "sample-class" / "submitted"
ROW = re.compile(r"<tr class=(pass|fail)><td><code>([^<]*)</code></td><td>\w+</td>"
                 r"<td class=num>([\d.]+) / ([\d.]+)</td><td>(.*?)</td></tr>", re.S)


def compatlab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compatlab", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def same_words(page_message: str, checked_message: str) -> bool:
    def words(text):
        text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
        # "it took 5.3 s", "3.6 tokens/s": a time or a rate measured in that run
        return re.sub(r"\b\d+(\.\d+)? (s|ms|tokens/s)\b", r"N \2", text)

    return words(page_message).startswith(words(checked_message))


@pytest.fixture(scope="session")  # like `graded`, so that a test's order of the two is the order they start
def checked():
    """Every sample notebook checked by `compatlab check --json`: {(student, lesson): report}.
    Two runs at once, half the class each: a check grades with one worker, and two runs on one
    machine are what learners do anyway (each its own engines and sandbox users)."""
    paths = sorted(SAMPLE.glob("*/*/*.ipynb"))
    halves = [paths[::2], paths[1::2]]
    runs = [subprocess.Popen([sys.executable, "-m", "compatlab", "check", *map(str, half), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO) for half in halves]
    found = {}
    try:
        for half, run in zip(halves, runs):
            stdout, stderr = run.communicate(timeout=1200)
            assert run.returncode in (0, 1), stdout[-2000:] + stderr[-2000:]
            reports = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
            assert len(reports) == len(half)
            found.update({(p.parent.parent.name, p.parent.name): report for p, report in zip(half, reports)})
    finally:
        for run in runs:
            run.kill()  # nothing, once it has ended
    return found


# checked before graded: under xdist another worker may be grading the class meanwhile
def test_check_gives_every_sample_student_the_verdicts_grade_gives(checked, graded):
    _, out, rows = graded
    for (student, lesson), report in checked.items():
        row = rows[(student, lesson)]
        assert report["status"] == "graded" and report["hidden_tests"], (student, lesson, report["status"])
        assert report["score"] == float(row["score"]), (student, lesson)
        page = (out / "feedback" / student / lesson / f"{lesson}.html").read_text()
        graded_rows = {name: (verdict, float(score), message) for verdict, name, score, _, message in ROW.findall(page)}
        assert set(graded_rows) == {r["name"] for r in report["results"]}
        for result in report["results"]:
            verdict, score, message = graded_rows[result["name"]]
            assert (verdict == "pass") == result["passed"] and score == (result["score"] or 0), (student, result)
            # the same words; only the port of an engine the notebook served itself, and the times
            # the notebook's own tests measured, may differ
            assert same_words(message, html.escape(result["message"])), (student, result["name"])


def test_check_names_the_known_mistake_of_every_wrong_answer(checked):
    for manifest in sorted((REPO / "data" / "sample-class").glob("*/manifest.toml")):
        lesson = manifest.parent.name
        for student, entry in tomllib.loads(manifest.read_text())["students"].items():
            if not entry["source"].endswith(".py"):
                continue
            assert entry.get("mistake") and entry.get("says") and entry.get("hint"), (lesson, student)
            report = checked[(student, lesson)]
            likely = [advice for r in report["results"] for advice in r["likely"]]
            assert any(advice.startswith(entry["mistake"]) for advice in likely), (lesson, student, likely)
            assert not any(r["likely"] for r in report["results"] if r["passed"]), (lesson, student)
    reference = [r for (student, _), report in checked.items() if student == "reference-solution"
                 for r in report["results"]]
    assert reference and not any(r["likely"] for r in reference)


def test_check_prints_a_table_a_total_and_exits_1_on_a_failure(tmp_path):
    folder = tmp_path / "tolerant-client"
    shutil.copytree(SAMPLE / "usage-zero-is-missing" / "tolerant-client", folder)
    result = compatlab("check", str(folder / "tolerant-client.ipynb"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "test_read_usage" in result.stdout and "failed" in result.stdout
    assert "13 of 15 points" in result.stdout and "compatlab grade" in result.stdout


def test_check_explains_what_it_cannot_check(tmp_path):
    result = compatlab("check", str(tmp_path / "nothing.ipynb"))
    assert result.returncode == 2 and "no such notebook" in result.stderr
    shutil.copy(SAMPLE / "reference-solution" / "tolerant-client" / "tolerant-client.ipynb", tmp_path / "mine.ipynb")
    result = compatlab("check", str(tmp_path / "mine.ipynb"))
    assert result.returncode == 2 and "cannot tell which lesson" in result.stderr and "--lesson" in result.stderr
    result = compatlab("check", str(tmp_path / "mine.ipynb"), "--lesson", "no-such-lesson", "--json")
    assert result.returncode == 2 and "no lesson called" in json.loads(result.stdout)["error"]


def test_a_course_can_keep_its_hidden_tests_for_grading(tmp_path):
    course = Course()
    root = tmp_path / "course"
    (root / "grader").mkdir(parents=True)
    (root / "grader" / "nbgrader_config.py").write_text(course.config_file.read_text()
                                                         + "\nc.CompatlabCheck.hidden_tests = False\n")
    (root / "solutions").symlink_to(course.solutions)
    (root / "lessons").symlink_to(course.lessons)
    [report] = check_notebooks([SAMPLE / "reference-solution" / "tolerant-client" / "tolerant-client.ipynb"],
                               course=Course(root))
    assert report.hidden_tests is False and report.status == "graded" and report.passed
    # what it graded against: the master with every visible line and none of the hidden ones
    stripped = visible_only(course, ["tolerant-client"], tmp_path / "stripped").master("tolerant-client").read_text()
    master = course.master("tolerant-client").read_text()
    hidden = re.findall(r"^### BEGIN HIDDEN TESTS$(.*?)^### END HIDDEN TESTS$", master, re.M | re.S)
    assert hidden and "HIDDEN TESTS" not in stripped
    assert stripped == re.sub(r"^### BEGIN HIDDEN TESTS$.*?^### END HIDDEN TESTS$\n?", "", master, flags=re.M | re.S)


def test_a_lesson_is_prepared_once_and_kept_where_only_its_user_can_write(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    course, made = Course(), []
    generate = prepared._generate
    monkeypatch.setattr(prepared, "_generate", lambda *args: made.append(args) or generate(*args))
    masters = {"tolerant-client": Lesson(course, "tolerant-client").digest}
    for out in ("first", "second"):
        prepared.seed(course, masters, tmp_path / out)
        assert json.loads((tmp_path / out / "state.json").read_text()) == {"masters": masters, "submissions": {}}
    assert len(made) == 1  # the second check copied the first one's gradebook
    gradebook = (tmp_path / "first" / "nbgrader" / "gradebook.db").read_bytes()
    assert (tmp_path / "second" / "nbgrader" / "gradebook.db").read_bytes() == gradebook
    [cached] = (tmp_path / "cache" / "compatlab" / "check").iterdir()
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700 and cached.read_bytes() == gradebook
    # a gradebook cut short is made again; so is one in a folder others can write, which is not kept
    cached.write_bytes(gradebook[:4096])
    prepared.seed(course, masters, tmp_path / "third")
    remade = cached.read_bytes()
    assert len(made) == 2 and remade == (tmp_path / "third" / "nbgrader" / "gradebook.db").read_bytes()
    cached.parent.chmod(0o777)
    prepared.seed(course, masters, tmp_path / "fourth")
    assert len(made) == 3 and prepared.cache_folder() is None and cached.read_bytes() == remade
    # another master (here: without its hidden tests) is another gradebook
    stripped = visible_only(course, ["tolerant-client"], tmp_path / "stripped")
    assert prepared.key(stripped, ["tolerant-client"]) != prepared.key(course, ["tolerant-client"])


def test_check_in_the_notebook_shows_the_verdicts_and_unsaved_answers(tmp_path):
    from nbclient import NotebookClient

    folder = tmp_path / "tolerant-client"
    folder.mkdir()
    saved = nbformat.read(SAMPLE / "usage-zero-is-missing" / "tolerant-client" / "tolerant-client.ipynb", as_version=4)
    saved.cells.append(nbformat.v4.new_code_cell("from compatlab.selfcheck import check\ncheck()"))
    nbformat.write(saved, folder / "tolerant-client.ipynb")
    # the kernel runs a read_usage the file does not hold: an edit the learner has not saved
    running = nbformat.from_dict(json.loads(json.dumps(saved)))
    answer = next(c for c in running.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "read_usage")
    answer.source += "\n# edited after the last save"
    NotebookClient(running, timeout=900, allow_errors=True, resources={"metadata": {"path": str(folder)}}).execute()
    shown = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in running.cells[-1].outputs)
    assert "✗ test_read_usage" in shown and "✓ test_content_text" in shown, shown
    assert "13 of 15 points" in shown
    assert "the saved read_usage is not a version you ran" in shown
    html_out = next(o.data["text/html"] for o in running.cells[-1].outputs if "text/html" in o.get("data", {}))
    assert "<table>" in html_out and "test_read_usage" in html_out


def test_check_does_nothing_while_grading(monkeypatch, capsys):
    from compatlab import selfcheck

    monkeypatch.setenv(selfcheck.GRADING_VARIABLE, "{}")
    selfcheck.check()
    assert "does nothing while the notebook is being graded" in capsys.readouterr().out
    monkeypatch.delenv(selfcheck.GRADING_VARIABLE)
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    selfcheck.check()
    assert "does nothing while the notebook is being graded or validated" in capsys.readouterr().out


@pytest.fixture
def check_service():
    """`compatlab check-service` in a process of its own; yields a function that starts one (on
    a Unix socket when given one) and returns an httpx client for it."""
    import os
    import time

    import httpx

    started, clients = [], []

    def start(*args: str, env: dict | None = None, socket_path=None) -> httpx.Client:
        where = ["--socket", str(socket_path)] if socket_path else ["--port", str(port := free_port())]
        started.append(subprocess.Popen([sys.executable, "-m", "compatlab", "check-service", *where, *args],
                                        cwd=REPO, env={**os.environ, **(env or {})},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        client = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), base_url="http://check",
                              timeout=900) if socket_path else httpx.Client(base_url=f"http://127.0.0.1:{port}",
                                                                              timeout=900)
        clients.append(client)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and started[-1].poll() is None:
            try:
                client.get("/")
                return client
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"the check service did not start: {started[-1].stderr.read()[-2000:]}")

    yield start
    for client in clients:
        client.close()
    for process in started:
        process.terminate()
        process.wait(10)


def test_the_check_service_gives_a_posted_notebook_the_verdicts_check_gives(check_service, tmp_path, monkeypatch, capsys):
    socket_path = tmp_path / "service" / "check.sock"  # a folder only this user can write: nobody takes its place
    service = check_service("--no-hub", socket_path=socket_path)
    assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o755
    path = SAMPLE / "usage-zero-is-missing" / "tolerant-client" / "tolerant-client.ipynb"
    reply = service.post("/check", params={"notebook": path.name, "folder": "tolerant-client"}, content=path.read_bytes())
    assert reply.status_code == 200, reply.text
    report = reply.json()
    assert report["status"] == "graded" and report["hidden_tests"] and (report["score"], report["max_score"]) == (13, 15)
    assert {r["name"] for r in report["results"] if not r["passed"]} == {"test_read_usage"}
    assert "assert " not in json.dumps(report)  # verdicts and messages; no test code
    # check() in a classroom kernel posts the saved notebook there and shows the same verdicts
    from compatlab import selfcheck

    mine = tmp_path / "tolerant-client" / "tolerant-client.ipynb"
    mine.parent.mkdir()
    shutil.copy(path, mine)
    monkeypatch.setenv(selfcheck.SERVICE_VARIABLE, f"unix:{socket_path}")
    selfcheck.check(exercise="read_usage", notebook=str(mine))
    shown = capsys.readouterr().out
    assert "✗ test_read_usage" in shown and "13 of 15 points" in shown and "test_content_text" not in shown, shown
    # a folder others can write is refused: a learner could put a socket of their own there
    crowded = tmp_path / "crowded"
    crowded.mkdir(mode=0o777)
    crowded.chmod(0o777)
    result = compatlab("check-service", "--no-hub", "--socket", str(crowded / "check.sock"))
    assert result.returncode == 2 and "nobody else can write" in result.stderr


def test_check_in_a_classroom_says_so_when_the_service_does_not_answer_as_one(tmp_path, monkeypatch, capsys):
    from compatlab import selfcheck

    mine = tmp_path / "first-contact.ipynb"
    shutil.copy(SAMPLE / "reference-solution" / "first-contact" / "first-contact.ipynb", mine)
    monkeypatch.setenv(selfcheck.SERVICE_VARIABLE, f"unix:{tmp_path / 'nobody-here.sock'}")
    selfcheck.check(notebook=str(mine))
    assert "did not answer" in capsys.readouterr().out
    monkeypatch.setenv(selfcheck.SERVICE_VARIABLE, f"http://127.0.0.1:{free_port()}")
    selfcheck.check(notebook=str(mine))
    assert "did not answer" in capsys.readouterr().out


def test_the_check_service_refuses_what_it_cannot_check_in_words(check_service):
    service = check_service("--no-hub")
    path = SAMPLE / "usage-zero-is-missing" / "tolerant-client" / "tolerant-client.ipynb"
    for params, body, status, says in (
            ({"notebook": "../../etc/passwd"}, b"{}", 400, "file name ending in .ipynb"),
            ({"notebook": "x.ipynb", "folder": "a/b"}, b"{}", 400, "folder a folder's name"),
            ({"notebook": "x.ipynb", "folder": ".."}, b"{}", 400, "not starting with a dot"),
            ({"notebook": "x.ipynb", "exercise": "x; rm"}, b"{}", 400, "exercise's name"),
            ({"notebook": "x.ipynb"}, b"x" * (20 * 2**20 + 1), 413, "20 MB limit"),
            ({"notebook": "mine.ipynb"}, path.read_bytes(), 400, "cannot tell which lesson"),
            ({"notebook": "tolerant-client.ipynb"}, b"not json", 200, "not valid JSON")):
        reply = service.post("/check", params=params, content=body)
        assert reply.status_code == status and says in reply.text, (params, reply.status_code, reply.text[:500])
    assert service.post("/check", params={"notebook": "x" * 20_000 + ".ipynb"}, content=b"{}").status_code == 400
    # in a classroom, only a hub user's token is let in (here the hub does not answer at all)
    hub = check_service(env={"JUPYTERHUB_API_URL": f"http://127.0.0.1:{free_port()}/hub/api"})
    reply = hub.post("/check", params={"notebook": path.name}, content=path.read_bytes())
    assert reply.status_code == 401 and "JUPYTERHUB_API_TOKEN" in reply.json()["error"]
    reply = hub.post("/check", params={"notebook": path.name}, content=path.read_bytes(),
                     headers={"Authorization": "token forged"})
    assert reply.status_code == 403 and "does not know this token" in reply.json()["error"]
    result = compatlab("check-service", "--port", "0")  # no hub to ask, and not told there is none
    assert result.returncode == 2 and "JUPYTERHUB_API_URL is not set" in result.stderr


def test_a_learner_holding_an_upload_open_holds_only_their_own_turn(check_service):
    """The one check per learner is claimed before the body is read: a body trickling in (or
    never finished) holds that learner's turn, not the service's memory or other learners'."""
    import select
    import socket
    import time
    from urllib.parse import urlsplit

    service = check_service("--no-hub")
    where = urlsplit(str(service.base_url))

    def start_slow_upload() -> socket.socket:
        slow = socket.create_connection((where.hostname, where.port))
        slow.sendall(b"POST /check?notebook=first-contact.ipynb HTTP/1.1\r\nHost: check\r\n"
                     b"Content-Length: 20000000\r\n\r\n" + b"{" * 1000)
        return slow

    slow = start_slow_upload()
    try:
        # a probe over the size limit is refused at once (413) whenever it has the turn itself;
        # the service may read a probe's headers before the slow one's, and then the slow one is
        # the one refused (409, answered on its socket): start it again, the probe's turn is over
        deadline = time.monotonic() + 60
        while (reply := service.post("/check", params={"notebook": "first-contact.ipynb"},
                                     content=b"x" * (20 * 2**20 + 1))).status_code != 409:
            assert reply.status_code == 413 and time.monotonic() < deadline, reply.text
            if select.select([slow], [], [], 0)[0]:
                assert b" 409 " in slow.recv(65536).split(b"\r\n")[0]
                slow.close()
                slow = start_slow_upload()
        assert "a check of yours is running already" in reply.json()["error"]
        assert not select.select([slow], [], [], 0)[0], "the slow upload was answered while unfinished"
    finally:
        slow.close()
    assert service.get("/").status_code == 200
