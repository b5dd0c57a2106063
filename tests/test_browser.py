"""A learner's first minute, in a real browser: `compatlab lab` (what `make lab` runs) headless on
a fresh work folder, a lesson opened in Debian's Chromium driven by Playwright, its first cells
run, a screenshot saved; the learner's tools shown and the instructor's hidden.

Chromium comes from Debian (`make test` installs it: `make browser`); Playwright drives that
binary (executable_path) and never downloads a browser of its own.
"""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from support import free_port

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO / "build" / "browser"
TOKEN = "compatlab-browser-test"


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("learner") / "work"  # does not exist yet: `compatlab lab` fills it


@pytest.fixture(scope="module")
def jupyterlab(work):
    port = free_port()
    release = _digests(REPO / "lessons")
    lab = subprocess.Popen([sys.executable, "-m", "compatlab", "lab", "--no-browser", "--port", str(port),
                            f"--IdentityProvider.token={TOKEN}", "--work", str(work), "--engine-port", "0"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "OLLAMA_HOST": f"127.0.0.1:{free_port()}"})  # no Ollama: the lab engine
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                if httpx.get(f"{url}/api/status", params={"token": TOKEN}, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        else:
            pytest.fail("JupyterLab did not start")
        yield url
    finally:
        lab.terminate()
        lab.wait(30)
    assert _digests(REPO / "lessons") == release, "the learner's lab changed the release in lessons/"


@pytest.fixture()
def browser_page():
    assert Path(CHROMIUM).exists(), "Debian's Chromium is missing: run `make browser` (make test does)"
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses to run as root with its sandbox, and CI runs as root
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser.new_page(viewport={"width": 1400, "height": 1000})
        browser.close()


def test_the_learner_sees_their_tools_and_not_the_instructors_and_no_news_popup(jupyterlab, browser_page):
    page = browser_page
    page.goto(f"{jupyterlab}/lab/workspaces/tools/tree/start-here.ipynb?token={TOKEN}")  # a workspace each
    expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_contain_text("Start here", timeout=60_000)
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=90_000)
    expect(page.locator(".jp-NotebookPanel-toolbar")).to_contain_text("Validate")  # nbgrader's, for learners
    # the news question comes a moment after start-up when the announcements plugin runs
    page.wait_for_timeout(5_000)
    assert page.get_by_text("Jupyter news").count() == 0, "JupyterLab asked about Jupyter news"
    right = page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab").evaluate_all("tabs => tabs.map(t => t.title)")
    assert not [title for title in right if "Create Assignment" in title], right
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
    items = [text for text in page.locator(".lm-Menu .lm-Menu-itemLabel").all_inner_texts() if text.strip()]
    assert items == ["Assignment List"], f"the Nbgrader menu shows {items}"


def test_a_lesson_opens_unmodified_from_the_work_folder_and_its_first_cells_run_in_chromium(jupyterlab, work,
                                                                                          browser_page):
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "compat-harness.png"
    shot.unlink(missing_ok=True)
    notebook = work / "compat-harness" / "compat-harness.ipynb"  # the learner's copy, made by `compatlab lab`
    copied = notebook.read_bytes()
    page.goto(f"{jupyterlab}/lab/workspaces/lesson/tree/compat-harness/compat-harness.ipynb?token={TOKEN}")
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    expect(cells.first).to_contain_text("Lesson 2 of 7", timeout=60_000)
    # the kernel is up when the status bar says so; keys pressed before that are lost
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=90_000)
    page.wait_for_timeout(1_000)
    # opening is not editing: the kernel's language_info is already there, so nothing to autosave
    assert page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty").count() == 0, \
        "opening the lesson marked it modified"
    assert notebook.read_bytes() == copied
    cells.first.locator(".jp-InputPrompt").click()  # select the first cell, in command mode
    for _ in range(3):  # title, introduction, then the setup cell that starts the lab engines
        page.keyboard.press("Shift+Enter")
    setup_output = cells.nth(2).locator(".jp-OutputArea-output")
    try:
        expect(setup_output.first).to_contain_text("engines:", timeout=120_000)
    except AssertionError:
        page.screenshot(path=SCREENSHOTS / "failed.png")  # what the learner would have seen
        raise
    expect(cells.nth(2).locator(".jp-InputPrompt")).to_contain_text("[1]")
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0 and "Traceback" not in page.locator(".jp-NotebookPanel").inner_text()
    page.keyboard.press("Control+s")  # the learner's save goes to the work folder (the fixture checks lessons/)
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty")).to_have_count(0, timeout=10_000)
    assert notebook.read_bytes() != copied
    page.screenshot(path=shot, full_page=False)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_the_last_cell_checks_the_saved_notebook_and_shows_the_verdicts(jupyterlab, work, browser_page):
    page = browser_page
    page.goto(f"{jupyterlab}/lab/workspaces/check/tree/tolerant-client/tolerant-client.ipynb?token={TOKEN}")
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    expect(cells.first).to_contain_text("Lesson 5 of 7", timeout=60_000)
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=90_000)
    # JupyterLab puts a long notebook's cells on the page a few at a time: wait for all of them
    saved = json.loads((work / "tolerant-client" / "tolerant-client.ipynb").read_text())
    expect(cells).to_have_count(len(saved["cells"]), timeout=60_000)
    # "Check your work": check(), as a learner runs it, on the saved (blank) copy. By its index:
    # Shift+Enter on the last cell adds an empty one below, which `cells.last` would then be
    last = cells.nth(cells.count() - 1)
    last.scroll_into_view_if_needed()
    last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    try:
        expect(last.locator(".jp-OutputArea")).to_contain_text("of 15 points", timeout=240_000)
    except AssertionError:
        page.screenshot(path=SCREENSHOTS / "check-failed.png")
        raise
    shown = last.locator(".jp-OutputArea").inner_text()
    assert "0 of 15 points" in shown and "test_content_text" in shown and "not answered yet" in shown, shown
