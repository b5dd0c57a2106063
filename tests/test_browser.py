"""A learner's first minute, in a real browser: `compatlab lab` (what `make lab` runs) headless,
a lesson opened in Debian's Chromium driven by Playwright, its first cells run, a screenshot saved.

Chromium comes from Debian (`make test` installs it: `make browser`); Playwright drives that
binary (executable_path) and never downloads a browser of its own.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO / "build" / "browser"
TOKEN = "compatlab-browser-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def jupyterlab(tmp_path):
    port = _free_port()
    # a copy of lessons/ as the root: running cells and autosaving must not touch the committed release
    root = shutil.copytree(REPO / "lessons", tmp_path / "lessons")
    lab = subprocess.Popen([sys.executable, "-m", "compatlab", "lab", "--no-browser", f"--ServerApp.port={port}",
                            f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", "--port", "0"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "OLLAMA_HOST": f"127.0.0.1:{_free_port()}"})  # no Ollama: the lab engine
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


def test_a_lesson_opens_and_its_first_cells_run_in_chromium(jupyterlab):
    assert Path(CHROMIUM).exists(), "Debian's Chromium is missing: run `make browser` (make test does)"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "compat-harness.png"
    shot.unlink(missing_ok=True)
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses to run as root with its sandbox, and CI runs as root
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{jupyterlab}/lab/tree/compat-harness/compat-harness.ipynb?token={TOKEN}")
        cells = page.locator(".jp-NotebookPanel .jp-Cell")
        expect(cells.first).to_be_visible(timeout=60_000)
        # the kernel is up when the status bar says so; keys pressed before that are lost
        expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=90_000)
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
        page.screenshot(path=shot, full_page=False)
        browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
