"""The learner's work folder (src/compatlab/workfolder.py): filled from the release on first use,
never overwritten, and a changed release put beside the learner's own notebook."""

import json
import shutil
import sys
from datetime import date
from pathlib import Path

import nbformat
import pytest

from compatlab.grader.course import REPO, Course
from compatlab.lab import prepare_work
from compatlab.workfolder import STATE, released_notebooks, sync

TODAY = date(2031, 5, 17)
LESSON = Path("first-contact") / "first-contact.ipynb"


@pytest.fixture()
def release(tmp_path) -> Path:
    """A copy of lessons/ that the test may change, as a new release would."""
    return shutil.copytree(REPO / "lessons", tmp_path / "lessons")


def edit(path: Path, text: str) -> None:
    """Change a notebook's first cell, as a learner's answer or a course update would."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[0].source += f"\n\n{text}"
    nbformat.write(notebook, path)


def test_first_use_copies_every_released_notebook_ready_for_this_kernel(release, tmp_path):
    work = tmp_path / "work"
    changes = sync(release, work, TODAY)
    expected = released_notebooks(release)
    assert {Path("start-here.ipynb"), LESSON} <= set(expected) and len(expected) == len(Course().assignments()) + 1
    assert [change.notebook for change in changes] == expected and {c.kind for c in changes} == {"copied"}
    for relative in expected:
        copied, released = nbformat.read(work / relative, 4), nbformat.read(release / relative, 4)
        # the version ipykernel reports, so JupyterLab has nothing to add when it opens the notebook
        assert copied.metadata.language_info.pop("version") == sys.version.split()[0]
        assert copied == released
    assert not (work / "README.md").exists()  # the release's README describes lessons/, not the work folder


def test_nothing_is_overwritten_when_the_release_is_unchanged(release, tmp_path):
    work = tmp_path / "work"
    sync(release, work, TODAY)
    edit(work / LESSON, "my answer")
    mine = (work / LESSON).read_bytes()
    assert sync(release, work, TODAY) == []
    assert (work / LESSON).read_bytes() == mine
    assert sorted(p.name for p in (work / "first-contact").iterdir()) == ["first-contact.ipynb"]


def test_a_changed_release_is_put_beside_the_learners_notebook_and_reported(release, tmp_path, capsys):
    work = tmp_path / "work"
    sync(release, work, TODAY)
    edit(work / LESSON, "my answer")
    mine = (work / LESSON).read_bytes()
    edit(release / LESSON, "a course update")
    (change,) = sync(release, work, TODAY)
    assert change.kind == "new-release" and change.notebook == LESSON
    assert change.beside == Path("first-contact") / "first-contact.release-2031-05-17.ipynb"
    assert (work / LESSON).read_bytes() == mine  # theirs, untouched
    assert "a course update" in nbformat.read(work / change.beside, 4).cells[0].source
    assert "Yours is unchanged" in str(change) and str(change.beside) in str(change)
    assert sync(release, work, TODAY) == []  # offered once, not again on every start
    # a second update the same day gets a name of its own: the learner may have started on the first
    edit(release / LESSON, "another update")
    prepare_work(work, release, TODAY)
    said = capsys.readouterr().out
    assert "first-contact/first-contact.release-2031-05-17-2.ipynb" in said
    assert (work / "first-contact" / "first-contact.release-2031-05-17.ipynb").is_file()
    assert "new version of this lesson" in said and (work / LESSON).read_bytes() == mine


def test_a_deleted_notebook_is_copied_afresh(release, tmp_path):
    work = tmp_path / "work"
    sync(release, work, TODAY)
    (work / LESSON).unlink()
    (change,) = sync(release, work, TODAY)
    assert change.kind == "copied" and (work / LESSON).is_file()


def test_a_work_folder_without_a_record_is_kept_as_it_is(release, tmp_path):
    work = tmp_path / "work"
    sync(release, work, TODAY)
    edit(work / LESSON, "my answer")
    (work / STATE).unlink()  # e.g. a work folder made by hand
    mine = (work / LESSON).read_bytes()
    assert sync(release, work, TODAY) == []
    assert (work / LESSON).read_bytes() == mine
    assert set(json.loads((work / STATE).read_text())) == {p.as_posix() for p in released_notebooks(release)}


def test_the_work_folder_is_ignored_by_git():
    assert "/work/" in (REPO / ".gitignore").read_text().splitlines()
