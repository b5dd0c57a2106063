"""The classroom loop, end to end, on JupyterHub on this machine (README, "Running a classroom").

`compatlab classroom up` with an instructor and two learners (fresh accounts, free ports), then:
the instructor logs in and releases first-contact with formgrader's Release button (formgrader
opened in a page of its own: inside JupyterLab it stays blank under the hub's frame-ancestors
rule); each learner
logs in through the hub's form in Debian's Chromium, fetches the lesson in the Assignments tab,
answers it (one right, one with a known mistake: the sample class's notebooks, written as that
learner), runs the lesson's last cell, check(), sees the verdicts, and clicks Submit; the
instructor collects, grades with `compatlab grade`, releases feedback; each learner fetches
their feedback in the browser and opens it. The scores must equal what `compatlab grade` gives
the same notebooks graded directly, the feedback must carry no test code, and no learner may
read the other's work. `classroom down --remove` takes it all away at the end.

Needs root (it makes Unix accounts), Chromium (`make browser`), npm and python3-venv
(`make classroom-deps`); `make test` installs them. Screenshots go to build/classroom/.
"""

import csv
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from compatlab.classroom.paths import CHECK_SOCKET, EXCHANGE, PASSWORDS, STATE
from support import free_port

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "build" / "classroom"
LESSON = "first-contact"  # the shortest graded lesson (about an hour, 15 points)
# Who answers what: the sample class's notebooks (data/sample-class/<lesson>/manifest.toml)
ANSWERS = {"right": ("reference-solution", 15), "wrong": ("ndjson-skips-bad-lines", 13)}
SHOT_NAMES = {"right": "1-learner-right", "wrong": "2-learner-wrong"}  # build/classroom/<name>-<step>.png
NBGRADER = "/opt/compatlab/venv/bin/nbgrader"
COMPATLAB = "/opt/compatlab/venv/bin/compatlab"
MINUTE = 60_000  # ms, for expect()


def as_user(user: str, *command: str, cwd: str | None = None, check: bool = True, stdin: bytes | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """A command as that user (runuser), in a clean environment and, with cwd, in that folder
    (changed into by the user's shell): root never touches their files itself."""
    environ = ["env", "-i", f"HOME=/home/{user}", f"USER={user}", "LANG=C.UTF-8",
               "PATH=/opt/compatlab/venv/bin:/usr/bin:/bin", *(f"{k}={v}" for k, v in (env or {}).items())]
    inside = ["sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", cwd] if cwd else []
    done = subprocess.run(["runuser", "-u", user, "--", *environ, *inside, *command], cwd="/", input=stdin,
                          capture_output=True, timeout=900)
    if check and done.returncode != 0:
        pytest.fail(f"as {user}: {' '.join(command)} failed ({done.returncode}):\n"
                    f"{done.stdout.decode(errors='replace')[-3000:]}\n{done.stderr.decode(errors='replace')[-3000:]}")
    return done


class Classroom:
    def __init__(self, tag: str, port: int) -> None:
        self.instructor = f"cl-ins-{tag}"
        self.learners = {"right": f"cl-a-{tag}", "wrong": f"cl-b-{tag}"}
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.course = f"/home/{self.instructor}/course"
        self.passwords: dict[str, str] = {}
        self.names = [self.instructor, *self.learners.values()]  # every account made

    def instructor_runs(self, *command: str) -> subprocess.CompletedProcess:
        """In the course folder, with COMPATLAB_COURSE set, as the instructor's server has it."""
        return as_user(self.instructor, *command, cwd=self.course, env={"COMPATLAB_COURSE": self.course})


@pytest.fixture(scope="module")
def classroom():
    assert os.geteuid() == 0, "the classroom test makes Unix accounts: run the tests as root (CI does)"
    assert Path(CHROMIUM).exists(), "Debian's Chromium is missing: run `make browser` (make test does)"
    if STATE.exists():
        pytest.fail(f"a classroom is already set up on this machine ({STATE}); this test brings up its own and "
                    "removes it at the end: `compatlab classroom down --remove` first")
    room = Classroom(secrets.token_hex(3), free_port())
    def up(*learners: str) -> list[str]:
        return [sys.executable, "-m", "compatlab", "classroom", "up", "--instructor", room.instructor,
                "--learners", ",".join(learners), "--port", str(room.port)]

    try:
        done = subprocess.run(up(*room.learners.values()), capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"`classroom up` failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        room.passwords = dict(line.split(":", 1) for line in PASSWORDS.read_text().splitlines())
        # a second `up` adds a learner and changes nothing else: the hub runs on, passwords stay
        late = f"cl-c-{room.instructor.removeprefix('cl-ins-')}"
        again = subprocess.run(up(*room.learners.values(), late), capture_output=True, text=True, timeout=900)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        passwords = dict(line.split(":", 1) for line in PASSWORDS.read_text().splitlines())
        assert passwords.keys() == room.passwords.keys() | {late}
        assert {name: passwords[name] for name in room.passwords} == room.passwords
        room.names.append(late)
        yield room
    finally:
        down = subprocess.run([sys.executable, "-m", "compatlab", "classroom", "down", "--remove", "--yes"],
                              capture_output=True, text=True, timeout=300)
        assert down.returncode == 0, down.stderr
        left = [name for name in room.names if Path(f"/home/{name}").exists()]
        assert not left and not STATE.exists() and not EXCHANGE.exists(), f"left behind: {left}"


def _browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])


def log_in(browser, room: Classroom, user: str) -> Page:
    """The hub's own login form, then JupyterLab: the learner's server starts on login."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{room.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", room.passwords[user])
    page.click("#login_submit")
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=3 * MINUTE)
    expect(page).to_have_url(re.compile(f"/user/{user}/lab"))
    return page


def open_assignments(page: Page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
    page.locator("li[data-command='nbgrader:open-assignment-list']").click()
    expect(page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")).to_contain_text("Assignments")


def listed(page: Page, name: str) -> object:
    """The rows of one of the Assignments tab's lists: released, fetched or submitted."""
    return page.locator(f"#{name}_assignments_list > .list_item")


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png")


def run_check(page: Page, room: Classroom, user: str, label: str) -> str:
    """Open the fetched lesson and run its last cell, check(), as the learner would."""
    page.goto(f"{room.url}/user/{user}/lab/tree/{LESSON}/{LESSON}.ipynb")
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    expect(cells.first).to_contain_text("Lesson 1 of 7", timeout=MINUTE)
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=2 * MINUTE)
    cell_count = len(json.loads(as_user(user, "cat", f"/home/{user}/{LESSON}/{LESSON}.ipynb").stdout)["cells"])
    expect(cells).to_have_count(cell_count, timeout=MINUTE)  # JupyterLab adds a long notebook's cells in steps
    last = cells.nth(cell_count - 1)
    last.scroll_into_view_if_needed()
    last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")  # run it, and add no cell below
    output = last.locator(".jp-OutputArea")
    try:
        expect(output).to_contain_text("of 15 points", timeout=4 * MINUTE)
    finally:
        shot(page, f"{label}-check")
    page.keyboard.press("Control+s")  # as a learner would before handing in
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty")).to_have_count(0, timeout=MINUTE)
    return output.inner_text()


def hidden_test_lines() -> list[str]:
    """Every line of the lesson's hidden tests worth recognising."""
    master = (REPO / "solutions" / LESSON / f"{LESSON}.py").read_text()
    hidden = re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", master, re.S)
    return [line.strip() for block in hidden for line in block.splitlines() if len(line.strip()) >= 12]


def scores(grades_csv: str) -> dict[str, tuple[float, str]]:
    """Each student's score and review note (an honest notebook has none)."""
    return {row["student"]: (float(row["score"]), row["review"]) for row in csv.DictReader(grades_csv.splitlines())}


def test_a_lesson_goes_round_the_classroom(classroom: Classroom, tmp_path):
    room = classroom
    who = room.learners
    shutil.rmtree(SHOTS, ignore_errors=True)
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        # a. the instructor releases the lesson into the exchange: formgrader's Release button
        page = log_in(browser, room, room.instructor)
        page.goto(f"{room.url}/user/{room.instructor}/formgrader/manage_assignments")
        row = page.locator("tr", has=page.locator("td.name", has_text=LESSON))
        expect(row).to_have_count(1, timeout=MINUTE)
        row.locator("td.release a").click()
        modal = page.locator("#success-modal")
        expect(modal).to_contain_text(f"Successfully released '{LESSON}'", timeout=MINUTE)
        expect(modal).to_be_visible()
        shot(page, "0-instructor-released")
        modal.get_by_role("button", name="OK").click()
        expect(row.locator("td.status")).to_contain_text("released")
        page.context.close()
        pages = {}
        for answer, user in who.items():
            label = SHOT_NAMES[answer]
            # b. log in, fetch the lesson from the Assignments tab
            page = pages[answer] = log_in(browser, room, user)
            assert page.request.get(f"{room.url}/user/{user}/formgrader/").status == 404, "a learner has formgrader"
            open_assignments(page)
            expect(listed(page, "released")).to_have_count(1, timeout=MINUTE)
            expect(listed(page, "released").first).to_contain_text(LESSON)
            shot(page, f"{label}-fetch")
            listed(page, "released").first.locator(".item_status button").click()
            expect(listed(page, "fetched")).to_have_count(1, timeout=MINUTE)
            fetched = f"/home/{user}/{LESSON}/{LESSON}.ipynb"
            assert as_user(user, "test", "-f", fetched, check=False).returncode == 0, "Fetch made no notebook"

            # c. the learner's answers (the sample class's), written as the learner, then check()
            sample = ANSWERS[answer][0]
            notebook = (REPO / "data" / "sample-class" / "submitted" / sample / LESSON / f"{LESSON}.ipynb").read_bytes()
            as_user(user, "sh", "-c", 'cat > "$1"', "sh", fetched, stdin=notebook)
            shown = run_check(page, room, user, label)
            points = ANSWERS[answer][1]
            assert f"{points} of 15 points" in shown, f"{user}'s check() showed:\n{shown}"
            if answer == "wrong":
                assert "test_parse_ndjson" in shown and "Likely mistake" in shown, shown

            open_assignments(page)
            expect(listed(page, "fetched")).to_have_count(1, timeout=MINUTE)
            listed(page, "fetched").first.locator(".item_status button", has_text="Submit").click()
            expect(listed(page, "submitted")).to_have_count(1, timeout=MINUTE)
            shot(page, f"{label}-submitted")

        # d. collect, e. grade, f. release the feedback: the instructor's commands, in the course folder
        room.instructor_runs(NBGRADER, "collect", LESSON)
        room.instructor_runs(COMPATLAB, "grade", "submitted", "--out", "graded")
        room.instructor_runs(NBGRADER, "release_feedback", LESSON)
        released = as_user(room.instructor, "ls", f"{EXCHANGE}/compatlab/feedback").stdout.split()
        assert len(released) == len(who), (
            f"release_feedback released {len(released)} feedback file(s) for {len(who)} learners: it needs "
            f"graded/nbgrader/feedback/<learner>/{LESSON}/{LESSON}.html beside timestamp.txt and submission_secret.txt")

        # g. each learner fetches their feedback in the browser and opens it
        hidden = hidden_test_lines()
        assert hidden, "found no hidden tests in the master to look for"
        for answer, user in who.items():
            page = pages[answer]
            page.goto(f"{room.url}/user/{user}/lab")
            open_assignments(page)
            submitted = listed(page, "submitted")
            expect(submitted).to_have_count(1, timeout=MINUTE)
            submitted.first.locator("button", has_text="Fetch Feedback").click()
            view = page.get_by_text("(view feedback)")
            expect(view).to_be_visible(timeout=MINUTE)
            view.click()  # the file browser goes to <lesson>/feedback/<timestamp>/
            page.locator(".jp-DirListing-item", has_text=f"{LESSON}.html").dblclick()
            frame = page.frame_locator(".jp-HTMLViewer iframe")
            expect(frame.locator("body")).to_contain_text(f"{ANSWERS[answer][1]:g} of 15 points", timeout=MINUTE)
            shot(page, f"{SHOT_NAMES[answer]}-feedback")
            found = as_user(user, "sh", "-c", f'cat "$HOME/{LESSON}"/feedback/*/{LESSON}.html').stdout.decode()
            assert f"<strong>{ANSWERS[answer][1]:g} of 15 points</strong>" in found
            leaked = [line for line in hidden if line in found]
            assert not leaked and "HIDDEN TESTS" not in found, f"the feedback shows test code: {leaked[:3]}"
        browser.close()

    # ... and neither learner can read the other's work, nor the instructor's, nor answers in the kit
    a, b = who["right"], who["wrong"]
    kit = Path("/opt/compatlab/kit")
    assert not [p for p in ("solutions", "data/sample-class", "tests", ".git") if (kit / p).exists()]
    for path in [f"/home/{b}/{LESSON}/{LESSON}.ipynb", f"/home/{b}", f"{EXCHANGE}/compatlab/inbound",
                 f"{EXCHANGE}/compatlab/feedback", f"{room.course}/solutions/{LESSON}/{LESSON}.py",
                 f"{room.course}/graded/feedback/{b}"]:
        denied = as_user(a, "ls", path, check=False)
        assert denied.returncode != 0 and b"Permission denied" in denied.stderr, f"{a} can read {path}"
    # nor answer in the check service's place: its socket's folder is root's alone
    squat = as_user(a, "sh", "-c", f"touch {CHECK_SOCKET.parent}/check.sock.mine", check=False)
    assert squat.returncode != 0 and b"Permission denied" in squat.stderr, squat

    # h. the classroom's scores are `compatlab grade`'s on the same notebooks, graded directly here
    graded = scores(as_user(room.instructor, "cat", f"{room.course}/graded/grades.csv").stdout.decode())
    assert graded == {who[answer]: (float(points), "") for answer, (_, points) in ANSWERS.items()}, graded
    direct = tmp_path / "submitted"
    for user in who.values():
        (direct / user / LESSON).mkdir(parents=True)
        copy = as_user(room.instructor, "cat", f"{room.course}/submitted/{user}/{LESSON}/{LESSON}.ipynb").stdout
        (direct / user / LESSON / f"{LESSON}.ipynb").write_bytes(copy)
    again = subprocess.run([sys.executable, "-m", "compatlab", "grade", str(direct), "--out", str(tmp_path / "graded")],
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert scores((tmp_path / "graded" / "grades.csv").read_text()) == graded
