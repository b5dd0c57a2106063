"""lessons/ is nbgrader's release of solutions/: current, and free of solutions and hidden tests."""

import shutil
import subprocess
import sys

import jupytext
import nbformat
import pytest

from compatlab.grader.course import REPO, Course
from compatlab.grader.release import SOLUTION_MARKERS, stale_files

COURSE = Course()
ASSIGNMENTS = COURSE.assignments()


def released(assignment: str) -> str:
    return (COURSE.lessons / assignment / f"{assignment}.ipynb").read_text()


def split_lines(source: str) -> tuple[list[str], list[str]]:
    """A master cell's lines: (inside solution or hidden-test regions, outside them)."""
    secret, public, inside = [], [], False
    for line in source.splitlines():
        if "BEGIN SOLUTION" in line or "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
            inside = False
        else:
            (secret if inside else public).append(line.strip())
    return secret, public


def master_cells(assignment: str) -> list:
    return jupytext.read(COURSE.master(assignment)).cells


def test_there_is_a_lesson():
    assert "compat-harness" in ASSIGNMENTS


def test_release_check_passes_on_the_committed_files():
    result = subprocess.run([sys.executable, "-m", "compatlab", "release", "--check"], capture_output=True,
                            text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_release_check_notices_a_master_edited_without_a_release(tmp_path):
    for folder in ("solutions", "lessons", "grader", "data"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.ipynb.orig"))
    master = tmp_path / "solutions" / "compat-harness" / "compat-harness.py"
    master.write_text(master.read_text().replace("# # Lesson 2 of 7 · A compatibility harness",
                                                 "# # Lesson 2 of 7 · A compatibility harness, revised"))
    stale = stale_files(Course(tmp_path))
    assert "lessons/compat-harness/compat-harness.ipynb" in stale
    submitted = tmp_path / "data" / "sample-class" / "submitted"
    edited = {f"data/sample-class/submitted/{p.relative_to(submitted)}" for p in submitted.glob("*/compat-harness/*")}
    # every submission of the edited lesson, and none of another lesson's
    assert edited and {p for p in stale if p.startswith("data/sample-class/submitted/")} == edited


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_release_has_no_markers(assignment):
    text = released(assignment)
    for marker in (*SOLUTION_MARKERS, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_solution_or_hidden_test_line_reaches_the_release(assignment):
    cells = nbformat.read(COURSE.lessons / assignment / f"{assignment}.ipynb", as_version=4).cells
    released_lines = {line.strip() for cell in cells for line in cell.source.splitlines()}
    secret, public = set(), set()
    for cell in master_cells(assignment):
        inside, outside = split_lines(cell.source)
        secret.update(inside)
        public.update(outside)
    # lines the visible code also has (`for data in sse_data(response):`) give nothing away
    distinctive = [line for line in secret - public if len(line) > 20]
    assert len(distinctive) > 40
    leaked = [line for line in distinctive if line in released_lines]
    assert not leaked


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_release_folder_holds_only_the_notebook(assignment):
    names = sorted(p.name for p in (COURSE.lessons / assignment).iterdir() if p.name != ".ipynb_checkpoints")
    assert names == [f"{assignment}.ipynb"]  # JupyterLab's checkpoints come from `make lab`, not the release


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_cells_keep_their_nbgrader_roles(assignment):
    cells = nbformat.read(COURSE.lessons / assignment / f"{assignment}.ipynb", as_version=4).cells
    graded = [c for c in cells if c.metadata.get("nbgrader", {}).get("grade")]
    answers = [c for c in cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert graded and all(c.metadata["nbgrader"]["locked"] and c.metadata["nbgrader"]["points"] > 0 for c in graded)
    assert answers and all('raise NotImplementedError("this exercise is not answered yet' in c.source for c in answers)
    assert all(not c.get("outputs") for c in cells if c.cell_type == "code")  # released without outputs


def _cell(source: str, grade_id: str = "", **flags) -> nbformat.NotebookNode:
    meta = {"nbgrader": {"grade_id": grade_id, "locked": True, "grade": False, "solution": False, **flags}} if grade_id else {}
    return nbformat.v4.new_code_cell(source, metadata=meta)


def test_a_demonstration_that_feeds_a_graded_cell_is_refused():
    """The grader leaves demonstrations out (grader/demos.py), so a release refuses one whose
    names a later cell reads: a test would see a NameError only when graded."""
    from compatlab.grader import demos

    clean = nbformat.v4.new_notebook(cells=[
        _cell("import time\nTIMEOUT = 2", "setup"),
        _cell("table = {limit: time.time() for limit in (1, 2)}\nfor row in table: pass", "demo_table"),
        _cell("row = 3\nassert row == 3 and TIMEOUT", "test_x", grade=True, points=1)])
    assert demos.leaks(clean) == []  # `row` is bound by the test itself; comprehension names stay inside
    leaky = nbformat.v4.new_notebook(cells=[
        _cell("def helper():\n    return 1\nLIMIT = 4", "demo_helper"),
        _cell("def check():\n    return helper() + LIMIT\nassert check()", "test_y", grade=True, points=1),
        _cell("print('hi')", "demo_unlocked", locked=False),
        _cell("x = 1", "demo_graded", grade=True, points=1)])
    problems = demos.leaks(leaky)
    assert any("reads 'helper'" in p and "demo_helper" in p for p in problems)
    assert any("reads 'LIMIT'" in p for p in problems)
    assert any(p.startswith("demo_unlocked: a demonstration must be a locked cell") for p in problems)
    assert any(p.startswith("demo_graded:") for p in problems)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_lessons_demonstrations_leave_its_grades_alone(assignment):
    from compatlab.grader import demos
    from compatlab.grader.course import read_master

    assert demos.leaks(read_master(COURSE.master(assignment))) == []
