"""The grading gates: `compatlab grade` on the sample class, through nbgrader itself.

The solution must score full marks, the blank release 0, and every hand-written wrong
harness strictly less than full marks and inside the band data/sample-class/manifest.toml
gives it. The class is graded once per session (about a minute) by the real command.
"""

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from compatlab.grader.course import REPO, Course
from compatlab.grader.release import sample_class

SAMPLE = REPO / "data" / "sample-class" / "submitted"
STUDENTS = {(student.name, student.assignment): student for student in sample_class(Course())}
ASSIGNMENTS = sorted({assignment for _, assignment in STUDENTS})
WRONG = sorted(key for key, s in STUDENTS.items() if s.source.endswith(".py"))


def compatlab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compatlab", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def points(row: dict) -> tuple[float, float]:
    return float(row["score"]), float(row["max_score"])


def test_the_manifests_name_every_sample_submission_and_nothing_else():
    on_disk = {(p.parent.name, p.name) for p in SAMPLE.glob("*/*") if p.is_dir()}
    assert set(STUDENTS) == on_disk
    assert set(ASSIGNMENTS) == set(Course().assignments())
    for assignment in ASSIGNMENTS:
        assert sum(1 for (_, a) in WRONG if a == assignment) >= 3, f"{assignment} needs wrong answers"


def test_every_submission_is_graded(graded):
    _, _, rows = graded
    assert set(rows) == set(STUDENTS)
    assert {row["status"] for row in rows.values()} == {"graded"}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_solution_scores_full_marks_on_every_cell(graded, assignment):
    _, _, rows = graded
    row = rows[("reference-solution", assignment)]
    score, most = points(row)
    assert most > 0 and score == most
    cells = [name for name in graded_cells(assignment) if f"{assignment}/{name}" in row]
    assert cells == graded_cells(assignment) and all(float(row[f"{assignment}/{name}"]) > 0 for name in cells)


def graded_cells(assignment: str) -> list[str]:
    from compatlab.grader.course import read_master

    return [cell.id for cell in read_master(Course().master(assignment)).cells
            if cell.metadata.get("nbgrader", {}).get("grade")]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_blank_release_scores_zero(graded, assignment):
    _, _, rows = graded
    assert points(rows[("blank-release", assignment)])[0] == 0


@pytest.mark.parametrize("student, assignment", WRONG)
def test_each_wrong_answer_loses_points_and_lands_in_its_band(graded, student, assignment):
    _, _, rows = graded
    score, most = points(rows[(student, assignment)])
    low, high = STUDENTS[(student, assignment)].band
    assert score < most, f"{student} got full marks: a hidden test is missing"
    assert low <= score <= high, f"{student}: {score} is outside {low}-{high}"


@pytest.mark.parametrize("student, assignment", WRONG)
def test_each_wrong_answer_loses_the_points_of_the_cells_it_gets_wrong(graded, student, assignment):
    _, _, rows = graded
    cells = STUDENTS[(student, assignment)].loses
    assert cells, f"the manifest should say which test cells {student} fails"
    for cell in cells:
        assert float(rows[(student, assignment)][f"{assignment}/{cell}"]) == 0, cell
        assert float(rows[("reference-solution", assignment)][f"{assignment}/{cell}"]) > 0, cell


def test_every_failure_of_a_wrong_answer_says_what_was_expected(graded):
    """A failed test tells the learner which behaviour was checked, what was expected and what
    they returned: never an exception's name alone ("AssertionError") or a bare token ("500")."""
    from compatlab.grader.feedback import failure_message

    _, out, rows = graded
    terse = []
    for (student, assignment), row in rows.items():
        if student == "blank-release":
            continue
        notebook = nbformat.read(out / "nbgrader" / "autograded" / student / assignment / f"{assignment}.ipynb",
                                 as_version=4)
        for cell in notebook.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution") and any(o.output_type == "error" for o in cell.outputs):
                message = failure_message(cell)
                said = message.partition(": ")[2]
                if len(re.findall(r"[A-Za-z]{2,}", said)) < 4:
                    terse.append(f"{assignment}/{student}/{meta['grade_id']}: {message!r}")
    assert not terse, "failures that do not say what was expected:\n" + "\n".join(terse)


def test_grade_prints_a_progress_bar_and_a_table(graded):
    result, _, _ = graded
    assert f"{len(STUDENTS)}/{len(STUDENTS)}" in result.stdout  # the progress bar's count
    assert "compatlab grades" in result.stdout and "15 / 15" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_grade_keeps_nbgrader_noise_in_a_log(graded):
    result, out, _ = graded
    assert "SAWarning" not in result.stdout + result.stderr
    assert (out / "nbgrader" / "grading.log").is_file()
    # what a sandbox prints to its terminal (ipykernel's start-up warnings, a cell's os.write(1, …))
    # belongs in the log too, under the submission's name
    log = (out / "nbgrader" / "grading.log").read_text()
    warning = "Kernel is running over TCP"
    assert warning not in result.stdout + result.stderr
    assert warning in log and "--- sandbox of reference-solution/tolerant-client" in log


def test_feedback_is_written_per_student(graded):
    _, out, _ = graded
    for student, assignment in STUDENTS:
        page = out / "feedback" / student / assignment / f"{assignment}.html"
        assert page.is_file() and graded_cells(assignment)[0] in page.read_text()


def hidden_test_lines(assignment: str) -> list[str]:
    """The hidden tests' code lines of a lesson, the ones long enough to be recognisable."""
    text = Course().master(assignment).read_text()
    blocks = re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", text, re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if len(line.strip()) > 25]


def test_feedback_shows_each_test_with_its_points_but_no_hidden_test_code(graded):
    import html

    _, out, rows = graded
    for student, assignment in STUDENTS:
        page = html.unescape((out / "feedback" / student / assignment / f"{assignment}.html").read_text())
        row = rows[(student, assignment)]
        for cell in graded_cells(assignment):
            passed = float(row[f"{assignment}/{cell}"]) > 0
            assert f"{cell}</code></td><td>{'passed' if passed else 'failed'}" in page, (student, cell)
        leaked = [line for line in hidden_test_lines(assignment) if line in page]
        assert not leaked, f"{student}/{assignment} feedback shows hidden test code: {leaked[:3]}"
    # a failing test says why, in the words of the check that failed
    page = (out / "feedback" / "sse-drops-last-event" / "tolerant-client" / "tolerant-client.html").read_text()
    assert "ended without a finish_reason" in page


def one_lesson_class(tmp_path: Path, assignment: str, students: list[str] | None = None) -> Path:
    folder = tmp_path / "class"
    for (student, lesson) in STUDENTS:
        if lesson == assignment and (students is None or student in students):
            shutil.copytree(SAMPLE / student / lesson, folder / student / lesson)
    return folder


def read_grades(out: Path) -> dict:
    with open(out / "grades.csv", newline="") as handle:
        return {(row["student"], row["assignment"]): row for row in csv.DictReader(handle)}


@pytest.fixture()
def out(tmp_path) -> Path:
    """A grading's --out folder on a long path (over 200 bytes): nothing the grader makes may
    depend on it being short, like a Unix socket, whose path must fit in 107 bytes."""
    out = tmp_path.joinpath(*["a-folder-with-a-rather-long-name"] * 5, "out")
    assert len(str(out)) > 200
    return out


def test_serial_grading_equals_parallel_and_a_second_run_grades_only_what_changed(graded, tmp_path, out):
    """One lesson's class graded by one worker equals the same notebooks in the 2-worker run; graded
    again into the same folder, only the new or changed submissions are graded."""
    _, _, parallel = graded
    folder = one_lesson_class(tmp_path, "tolerant-client")
    result = compatlab("grade", str(folder), "--out", str(out), "--workers", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    first = read_grades(out)
    # the same score, status and points per test cell (the class's CSV has every lesson's columns)
    assert first and {key: {name: parallel[key][name] for name in row} for key, row in first.items()} == first
    # one student hands in again (now the blank release), one joins the class
    blank = SAMPLE / "blank-release" / "tolerant-client" / "tolerant-client.ipynb"
    shutil.copy(blank, folder / "names-concatenated" / "tolerant-client")
    shutil.copytree(SAMPLE / "usage-zero-is-missing", folder / "latecomer")
    result = compatlab("grade", str(folder), "--out", str(out), "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"2 submissions graded now; {len(first) - 1} unchanged" in result.stdout
    second = read_grades(out)
    assert second[("reference-solution", "tolerant-client")] == first[("reference-solution", "tolerant-client")]
    assert float(second[("names-concatenated", "tolerant-client")]["score"]) == 0
    assert float(second[("latecomer", "tolerant-client")]["score"]) == 13
    # nothing changed: nothing is graded, every grade is kept
    result = compatlab("grade", str(folder), "--out", str(out))
    assert f"0 submissions graded now; {len(second)} unchanged" in result.stdout and read_grades(out) == second
    # a late hand-in graded on its own into the same --out: nobody else's results are lost
    late = tmp_path / "late"
    shutil.copytree(SAMPLE / "reference-solution" / "tolerant-client", late / "latecomer" / "tolerant-client")
    result = compatlab("grade", str(late), "--out", str(out), "--workers", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(second) - 1} of those are not in" in result.stdout
    third = read_grades(out)
    assert set(third) == set(second) and float(third[("latecomer", "tolerant-client")]["score"]) == 15
    assert all(third[key] == second[key] for key in second if key[0] != "latecomer")
    for student, assignment in second:
        assert (out / "feedback" / student / assignment / f"{assignment}.html").is_file()
    assert set(json.loads((out / "state.json").read_text())["submissions"]) == {f"{s}/{a}" for s, a in second}


def test_grade_refuses_zero_workers(tmp_path):
    result = compatlab("grade", str(SAMPLE), "--out", str(tmp_path / "out"), "--workers", "0")
    assert result.returncode == 2 and "--workers must be at least 1" in result.stderr


def test_the_report_embeds_its_figures_and_links_every_feedback_page(graded):
    _, out, _ = graded
    report = (out / "report.html").read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', report)
    assert images == [f"{lesson}: {chart}" for lesson in Course().assignments()  # in course order
                      for chart in ("pass rate per exercise", "score distribution")]
    for student, assignment in STUDENTS:
        assert f'href="feedback/{student}/{assignment}/{assignment}.html"' in report


def lesson_section(report: str, assignment: str) -> str:
    found = re.search(rf'<section id="lesson-{re.escape(assignment)}">(.*?)</section>', report, re.S)
    assert found, f"report.html has no section for {assignment}"
    return found.group(1)


def report_row(section: str, cell: str) -> re.Match:
    """A test cell's row in a lesson's table: passed, graded, rate, most common failure, its count."""
    found = re.search(rf"<tr><td><code>{cell}</code></td><td class=num>(\d+) / (\d+)</td><td class=num>(\d+) %</td>"
                      r"<td>(.*?)</td><td class=num>(?:(\d+) of (\d+))?</td></tr>", section)
    assert found, f"the report's table has no row for {cell}"
    return found


def test_the_report_gives_each_lesson_its_pass_rates_as_grades_csv_has_them(graded):
    """Over that lesson's submissions only, as grades.csv has them (not diluted by other lessons)."""
    _, out, rows = graded
    report = (out / "report.html").read_text()
    for assignment in ASSIGNMENTS:
        section = lesson_section(report, assignment)
        mine = [row for (_, lesson), row in rows.items() if lesson == assignment]
        for cell in graded_cells(assignment):
            name = f"{assignment}/{cell}"
            full = float(rows[("reference-solution", assignment)][name])
            passed = sum(float(row[name]) >= full for row in mine)
            shown = report_row(section, cell).groups()[:3]
            assert shown == (str(passed), str(len(mine)), f"{100 * passed / len(mine):.0f}"), (assignment, cell)
            assert all(row[name] == "" for (_, lesson), row in rows.items() if lesson != assignment), name


def test_grades_csv_gives_each_lessons_test_cells_their_own_columns(graded):
    """test_check_structured is a cell of two lessons: two columns, and one table per lesson too."""
    _, out, rows = graded
    with open(out / "grades.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert [name for name in header if "/" in name] == [f"{a}/{c}" for a in ASSIGNMENTS for c in graded_cells(a)]
    assert len(header) == len(set(header))
    for lesson in ("compat-harness", "spec-compliance"):
        assert "test_check_structured" in graded_cells(lesson) and f"{lesson}/test_check_structured" in header
    for assignment in ASSIGNMENTS:
        with open(out / f"grades-{assignment}.csv", newline="") as handle:
            own = list(csv.DictReader(handle))
        assert sorted(row["student"] for row in own) == sorted(s for s, a in STUDENTS if a == assignment)
        for row in own:
            whole = rows[(row["student"], assignment)]
            assert [row[c] for c in graded_cells(assignment)] == [whole[f"{assignment}/{c}"]
                                                                    for c in graded_cells(assignment)]


def feedback_failures(out: Path, student: str, assignment: str) -> dict[str, str]:
    """The failed test cells of a feedback page, with the message each shows."""
    import html

    page = (out / "feedback" / student / assignment / f"{assignment}.html").read_text()
    # the message, without the known mistake the page may name after it
    return {name: html.unescape(message.split("<p class=likely>")[0]) for name, message in re.findall(
        r"<tr class=fail><td><code>([^<]+)</code></td><td>failed</td><td class=num>[^<]*</td><td>(.*?)</td></tr>", page)}


def test_the_report_shows_each_tests_most_common_failure_message(graded):
    """The message most failed submissions of that lesson got for that test, as their feedback shows it,
    escaped and shortened; and, like the feedback, no hidden test code."""
    import html
    from collections import Counter

    _, out, _ = graded
    report = (out / "report.html").read_text()
    for assignment in ASSIGNMENTS:
        section = lesson_section(report, assignment)
        failures = [feedback_failures(out, student, assignment) for student, a in STUDENTS if a == assignment]
        for cell in graded_cells(assignment):
            counts = Counter(found[cell] for found in failures if cell in found)
            message, seen, of = report_row(section, cell).groups()[3:]
            if not counts:
                assert (message, seen, of) == ("", None, None), (assignment, cell)
                continue
            top = max(counts.values())
            text = "" if message == "<em>(no message)</em>" else html.unescape(message).removesuffix(" …")
            assert any(m.startswith(text) and len(text) >= min(len(m), 150) for m, n in counts.items() if n == top), \
                (assignment, cell, text, counts)
            assert (int(seen), int(of)) == (top, counts.total()), (assignment, cell)
    assert "&#x27;" in report  # the messages' quotes come escaped
    leaked = [line for a in ASSIGNMENTS for line in hidden_test_lines(a) if line in html.unescape(report)]
    assert not leaked, f"the report shows hidden test code: {leaked[:3]}"


def test_grade_does_not_touch_the_submissions(graded):
    subprocess.run(["git", "diff", "--quiet", "--", str(SAMPLE)], cwd=REPO, check=True)
    assert not list(SAMPLE.rglob("*.html"))


# ---------------------------------------------------------------- bad input


def test_grade_reports_a_missing_folder(tmp_path):
    result = compatlab("grade", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no such folder" in result.stderr and "Traceback" not in result.stderr


def test_grade_reports_an_unknown_assignment(tmp_path):
    (tmp_path / "class" / "ada" / "homework-9").mkdir(parents=True)
    result = compatlab("grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "unknown assignment 'homework-9'" in result.stderr and "compat-harness" in result.stderr


def test_grade_reports_an_empty_class(tmp_path):
    (tmp_path / "class").mkdir()
    result = compatlab("grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "nothing to grade" in result.stderr


def test_grade_grades_the_rest_of_the_class_around_broken_notebooks(tmp_path, out):
    submitted = tmp_path / "class"
    good = submitted / "ada" / "compat-harness"
    good.mkdir(parents=True)
    shutil.copy(SAMPLE / "reference-solution" / "compat-harness" / "compat-harness.ipynb", good)
    broken = submitted / "bob" / "compat-harness"
    broken.mkdir(parents=True)
    (broken / "compat-harness.ipynb").write_text('{"cells": [')  # cut off mid-upload
    renamed = submitted / "cy" / "compat-harness"
    renamed.mkdir(parents=True)
    shutil.copy(good / "compat-harness.ipynb", renamed / "my-copy.ipynb")

    result = compatlab("grade", str(submitted), "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr  # not everyone could be graded
    assert "2 of 3 submissions could not be graded" in result.stdout
    with open(out / "grades.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert rows["ada"]["status"] == "graded" and rows["ada"]["score"] == rows["ada"]["max_score"]
    assert rows["bob"]["status"] == "compat-harness.ipynb is not valid JSON (line 1)" and rows["bob"]["score"] == ""
    assert rows["cy"]["status"] == "missing compat-harness.ipynb (found my-copy.ipynb)"


# ---------------------------------------------------------------- the lesson itself


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_lesson_runs_top_to_bottom_against_the_lab_engine(tmp_path, assignment):
    """Every cell of the solution runs without an error or a word on stderr, plots included."""
    from nbclient import NotebookClient

    from compatlab.grader.course import read_master

    notebook = read_master(Course().master(assignment))
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # every lesson ends in a plot


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_released_lesson_runs_its_setup_and_fails_its_visible_tests(tmp_path, assignment):
    """What a learner opens: the setup works, and each visible test fails until they write code."""
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO / "lessons" / assignment / f"{assignment}.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    by_id = {cell.id: cell for cell in notebook.cells}
    assert not [o for o in by_id["setup"].outputs if o.output_type == "error"]
    assert by_id["setup"].outputs, "the setup cell should say what it connected to"
    tests = [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade")]
    assert [cell.id for cell in tests] == graded_cells(assignment)
    for cell in tests:
        assert [o.ename for o in cell.outputs if o.output_type == "error"], cell.id


# ---------------------------------------------------------------- demonstrations (grader/demos.py)


def demo_cells(notebook) -> list:
    from compatlab.grader.demos import is_demo

    return [c for c in notebook.cells if is_demo(c)]


def test_the_grader_leaves_each_demonstration_out_and_says_so(graded):
    from compatlab.grader.sandboxed_execute import NOT_RUN

    _, out, _ = graded
    lessons_with_demos = 0
    for assignment in ASSIGNMENTS:
        notebook = nbformat.read(out / "nbgrader" / "autograded" / "reference-solution" / assignment
                                 / f"{assignment}.ipynb", as_version=4)
        demos = demo_cells(notebook)
        lessons_with_demos += bool(demos)
        for cell in demos:
            assert [(o.output_type, o.get("text")) for o in cell.outputs] == [("stream", NOT_RUN)], cell.source[:80]
        ran = [c for c in notebook.cells if c.cell_type == "code" and c not in demos]
        assert all(c.execution_count is not None for c in ran), assignment
    assert lessons_with_demos >= 5


def test_run_demos_runs_them_and_a_test_relabelled_as_a_demonstration_still_runs(tmp_path, out):
    """A learner cannot have a test left out by giving its cell a demonstration's name: the
    gradebook, not the notebook, says which cells are demonstrations, and nbgrader puts a locked
    cell's source back before anything runs. --run-demos runs them, and grades the class again."""
    lesson, wrong, test = "ollama-adapter", "health-check-no-timeout", "test_health_check"
    assert test in STUDENTS[(wrong, lesson)].loses
    submitted = tmp_path / "class"
    (submitted / "ada" / lesson).mkdir(parents=True)
    shutil.copy(SAMPLE / "reference-solution" / lesson / f"{lesson}.ipynb", submitted / "ada" / lesson)
    notebook = nbformat.read(SAMPLE / wrong / lesson / f"{lesson}.ipynb", as_version=4)
    [target] = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == test]
    demo = demo_cells(notebook)[-1].metadata.nbgrader.grade_id
    target.metadata.nbgrader.update(grade=False, grade_id=demo, locked=True)
    target.metadata.nbgrader.pop("points", None)
    (submitted / "mallory" / lesson).mkdir(parents=True)
    nbformat.write(notebook, submitted / "mallory" / lesson / f"{lesson}.ipynb")

    def grade(*extra: str) -> dict:
        result = compatlab("grade", str(submitted), "--out", str(out), *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        with open(out / "grades.csv", newline="") as handle:
            return {row["student"]: row for row in csv.DictReader(handle)}

    def demo_outputs() -> list[str]:
        autograded = nbformat.read(out / "nbgrader" / "autograded" / "ada" / lesson / f"{lesson}.ipynb", as_version=4)
        return ["".join(o.get("text", "") for o in cell.outputs) for cell in demo_cells(autograded)]

    from compatlab.grader.sandboxed_execute import NOT_RUN

    first = grade()
    assert float(first["mallory"][f"{lesson}/{test}"]) == 0  # the test ran, and failed as it should
    low, high = STUDENTS[(wrong, lesson)].band
    assert low <= float(first["mallory"]["score"]) <= high
    assert first["ada"]["score"] == first["ada"]["max_score"]
    assert demo_outputs() and set(demo_outputs()) == {NOT_RUN}

    second = grade("--run-demos")
    assert {name: row["score"] for name, row in second.items()} == {name: row["score"] for name, row in first.items()}
    assert NOT_RUN not in demo_outputs()
    assert any(text.strip() for text in demo_outputs())  # they printed what they show
