"""One course order, from one source: solutions/course.toml. Everything that shows the order
(the README's course map and lesson table, each lesson's title and its "Lesson N" references,
lessons/README.md, the start-here notebook, `compatlab`'s own list) must agree with it."""

import re
import shutil

import jupytext
import nbformat
import pytest
from ipykernel.ipkernel import IPythonKernel

from compatlab.grader.course import LANGUAGE_INFO, REPO, Course, CourseFileError
from compatlab.grader.release import START_HERE, course_map, lessons_readme

COURSE = Course()
PLAN = COURSE.plan()


def readme_table(heading: str) -> list[list[str]]:
    """The rows of the first table under `heading` in the top-level README, as stripped cells."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(f"\n{heading}\n") + len(heading) + 2:]
    rows = []
    for line in section.splitlines():
        if line.startswith("## "):
            break
        if line.startswith("|---"):
            continue
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[1:]  # without the header


def test_the_course_file_lists_every_master_once_in_an_order_that_respects_prerequisites():
    masters = {d.name for d in COURSE.solutions.iterdir() if (d / f"{d.name}.py").is_file()}
    assert sorted(COURSE.assignments()) == sorted(masters), "solutions/course.toml and the masters disagree"
    assert [lesson.number for lesson in PLAN] == list(range(1, len(PLAN) + 1))
    assert all(lesson.of == len(PLAN) and lesson.title and lesson.time for lesson in PLAN)


@pytest.mark.parametrize("change, says", [
    (lambda text: text.replace('name = "spec-compliance"', 'name = "spec-complaince"'), "has no master"),
    (lambda text: text[:text.rindex("[[lesson]]")], "solutions/adapter-layer/adapter-layer.py is not listed"),
    (lambda text: text.replace('prerequisites = ["first-contact"]\n\n[[lesson]]\nname = "ndjson-sse-proxy"',
                               'prerequisites = ["tolerant-client"]\n\n[[lesson]]\nname = "ndjson-sse-proxy"', 1),
     "needs tolerant-client, which does not come before it"),
])
def test_a_course_file_that_disagrees_with_the_masters_is_refused(tmp_path, change, says):
    shutil.copytree(COURSE.solutions, tmp_path / "solutions", ignore=shutil.ignore_patterns("*.ipynb"))
    course_file = tmp_path / "solutions" / "course.toml"
    changed = change(course_file.read_text())
    assert changed != course_file.read_text()
    course_file.write_text(changed)
    with pytest.raises(CourseFileError, match=re.escape(says)):
        Course(tmp_path).assignments()


@pytest.mark.parametrize("lesson", PLAN, ids=[lesson.name for lesson in PLAN])
def test_each_lesson_is_titled_with_its_place_in_the_course(lesson):
    first = jupytext.read(COURSE.master(lesson.name)).cells[0]
    assert first.cell_type == "markdown"
    assert first.source.splitlines()[0] == f"# {lesson.heading}", f"{lesson.name}'s master: {first.source[:60]!r}"
    released = nbformat.read(COURSE.lessons / lesson.name / f"{lesson.name}.ipynb", as_version=4).cells[0]
    assert released.source.splitlines()[0] == f"# {lesson.heading}", "lessons/ is stale: run `make release`"


@pytest.mark.parametrize("lesson", PLAN, ids=[lesson.name for lesson in PLAN])
def test_a_lesson_that_names_another_by_number_names_it_right(lesson):
    names = {other.number: other.name for other in PLAN}
    text = "\n".join(cell.source for cell in jupytext.read(COURSE.master(lesson.name)).cells[1:]
                     if cell.cell_type == "markdown")
    for match in re.finditer(r"\bLesson (\d+)\b", text):
        number = int(match.group(1))
        # "Lesson 4, `ollama-adapter`, …" or "Lesson 1 (`first-contact`)": the name follows the number
        assert f"`{names.get(number)}`" in text[match.end():match.end() + 30], \
            f"{lesson.name} says {text[match.start():match.end() + 30]!r}: name lesson {number}, `{names.get(number)}`"


def test_the_readme_course_map_follows_the_course_file():
    rows = readme_table("## Course map")
    got = [(row[0], row[1], row[3], row[4]) for row in rows]
    expected = [(str(lesson.number), f"`{lesson.name}`", lesson.time,
                 ", ".join(f"`{name}`" for name in lesson.prerequisites) or "—") for lesson in PLAN]
    assert got == expected


def test_the_readme_lesson_table_is_in_course_order():
    assert [row[0] for row in readme_table("## Lessons")] == [f"`{lesson.name}`" for lesson in PLAN]


def test_the_released_course_pages_show_the_course_file():
    assert (COURSE.lessons / "README.md").read_text() == lessons_readme(COURSE), "lessons/README.md: run `make release`"
    start = nbformat.read(COURSE.lessons / f"{START_HERE}.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in start.cells)
    assert course_map(COURSE) in text and COURSE.needs() in text
    for lesson in PLAN:
        assert f"[{lesson.title}]({lesson.name}/{lesson.name}.ipynb)" in text
    assert not any(cell.metadata.get("nbgrader") for cell in start.cells), "the start-here notebook is not graded"
    assert "<!--" not in text and "{needs}" not in text  # every placeholder filled


@pytest.mark.parametrize("term", ["TTFT", "chunk", "delta", "done frame", "finish chunk", "profile", "quirk", "shim",
                                  "NDJSON", "SSE", "[DONE]", "usage chunk", "lab engine", "fault", "real tier"])
def test_the_glossary_defines_the_course_words(term):
    start = nbformat.read(COURSE.lessons / f"{START_HERE}.ipynb", as_version=4)
    glossary = next(cell.source for cell in start.cells if cell.source.startswith("## Glossary"))
    assert re.search(rf"^\| \*\*`?{re.escape(term)}`?\*\*", glossary, re.MULTILINE), f"no glossary entry for {term}"


def test_released_notebooks_carry_the_kernels_language_info_but_the_python_version():
    kernel = dict(IPythonKernel.language_info)
    kernel.pop("version")
    assert LANGUAGE_INFO == kernel  # what JupyterLab would write into a notebook it opens
    for path in [COURSE.lessons / f"{START_HERE}.ipynb",
                 *(COURSE.lessons / name / f"{name}.ipynb" for name in COURSE.assignments())]:
        assert nbformat.read(path, as_version=4).metadata["language_info"] == LANGUAGE_INFO, path


def test_a_new_gradebook_gets_the_alembic_revision_nbgrader_would_ask_its_subprocess_for(tmp_path):
    """alembic_head_in_process: the same stamp as `alembic heads` (nbgrader's own way), without
    the second Python; and nbgrader's Gradebook writes it into a new gradebook."""
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    import nbgrader.api
    from nbgrader.dbutil import _temp_alembic_ini

    from compatlab.grader.course import alembic_head_in_process

    with _temp_alembic_ini(f"sqlite:///{tmp_path / 'unused.db'}") as ini:
        heads = subprocess.run([str(Path(sys.executable).parent / "alembic"), "-c", ini, "heads"],
                               capture_output=True, text=True, check=True).stdout
    alembic_head_in_process()
    assert nbgrader.api.get_alembic_version() == heads.split()[0]
    with nbgrader.api.Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}"):
        pass
    with sqlite3.connect(tmp_path / "gradebook.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(heads.split()[0],)]
