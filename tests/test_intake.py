"""Reading a class's submissions: every shape a folder, link, FIFO or byte stream can take
becomes that submission's status, never a crash, a hang, or a read through a link."""

import json
import os
import shutil
import socket
from pathlib import Path

import nbformat
import pytest

from compatlab.grader.course import REPO
from compatlab.grader.intake import MAX_NOTEBOOK_BYTES, UsageError, find_submissions, parse_notebook

LESSON = "tolerant-client"
ASSIGNMENTS = ["compat-harness", "tolerant-client"]
GOOD = REPO / "data" / "sample-class" / "submitted" / "reference-solution" / LESSON / f"{LESSON}.ipynb"


def submit(folder: Path, student: str, content: bytes | None = None, assignment: str = LESSON) -> Path:
    target = folder / student / assignment
    target.mkdir(parents=True)
    if content is not None:
        (target / f"{assignment}.ipynb").write_bytes(content)
    return target / f"{assignment}.ipynb"


def statuses(folder: Path) -> dict[str, str]:
    return {f"{s.student}/{s.assignment}": s.status for s in find_submissions(folder, ASSIGNMENTS)}


@pytest.fixture()
def classroom(tmp_path):
    folder = tmp_path / "class"
    submit(folder, "ada", GOOD.read_bytes())
    return folder


def test_a_good_notebook_is_read_checked_and_fingerprinted(classroom):
    [ada] = find_submissions(classroom, ASSIGNMENTS)
    assert ada.status == "graded" and ada.notebook.nbformat == 4 and len(ada.fingerprint) == 64


@pytest.mark.parametrize("content, status", [
    (b'{"cells": [', "is not valid JSON (line 1)"),
    (b"\xff\xfe{}", "is not UTF-8 text (byte 0 is not valid)"),
    (json.dumps({"nbformat": 99, "nbformat_minor": 0, "cells": [], "metadata": {}}).encode(),
     "is not a notebook version nbgrader can grade (nbformat 99; expected 4)"),
    (b"[" * 100_000 + b"]" * 100_000, "nests too deeply to be a notebook"),
    (b"[1, 2]", "is not a Jupyter notebook (not a JSON object)"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": "nope", "metadata": {}}).encode(),
     "is not a valid Jupyter notebook"),
])
def test_unreadable_notebooks_get_a_reason(classroom, content, status):
    submit(classroom, "bob", content)
    found = statuses(classroom)
    assert found["ada/tolerant-client"] == "graded"
    assert status in found["bob/tolerant-client"], found["bob/tolerant-client"]


@pytest.mark.parametrize("nbgrader, status", [
    ("x", "cell 1's nbgrader metadata is not an object"),
    ({"grade_id": ["a"]}, "cell 1's nbgrader grade_id is not a string"),
    ({"grade": "yes"}, "cell 1's nbgrader flags are not true or false"),
    ({"points": "3"}, "cell 1's nbgrader points are not a number"),
])
def test_grading_metadata_of_the_wrong_shape_is_a_reason(classroom, nbgrader, status):
    notebook = json.loads(GOOD.read_text())
    notebook["cells"][0]["metadata"]["nbgrader"] = nbgrader
    submit(classroom, "bob", json.dumps(notebook).encode())
    assert statuses(classroom)["bob/tolerant-client"] == f"tolerant-client.ipynb: {status}"


def test_deep_nesting_inside_a_valid_notebook_is_a_reason_too(classroom):
    notebook = json.loads(GOOD.read_text())
    notebook["metadata"]["deep"] = "NEST"
    text = json.dumps(notebook).replace('"NEST"', "[" * 5000 + "]" * 5000)
    submit(classroom, "bob", text.encode())
    assert "nests too deeply" in statuses(classroom)["bob/tolerant-client"]


def test_a_notebook_over_the_size_limit_is_refused_unread(classroom):
    path = submit(classroom, "bob", b"")
    with open(path, "wb") as handle:
        handle.truncate(MAX_NOTEBOOK_BYTES + 1)  # sparse: costs no disk
    assert statuses(classroom)["bob/tolerant-client"] == "tolerant-client.ipynb is 20.0 MB, over the 20 MB limit for a notebook"


def test_links_are_never_followed_at_any_level(classroom, tmp_path):
    secret = tmp_path / "secret.ipynb"
    shutil.copy(GOOD, secret)  # a perfectly good notebook, reachable only through a link
    submit(classroom, "bob").symlink_to(secret)
    (classroom / "cy").mkdir()
    (classroom / "cy" / LESSON).symlink_to(classroom / "ada" / LESSON)
    (classroom / "dee").symlink_to(classroom / "ada")
    found = statuses(classroom)
    assert found["bob/tolerant-client"] == "tolerant-client.ipynb is a symbolic link; the grader does not follow links"
    assert found["cy/tolerant-client"] == "the assignment folder is a symbolic link; not followed"
    assert found["dee/-"] == "the student's folder is a symbolic link; not followed"


def test_a_fifo_socket_or_folder_in_place_of_the_notebook_is_refused_without_blocking(classroom, monkeypatch):
    os.mkfifo(submit(classroom, "bob"))  # reading it would block forever
    listener = socket.socket(socket.AF_UNIX)
    path = submit(classroom, "cy")
    monkeypatch.chdir(path.parent)  # a relative name: the absolute one may pass AF_UNIX's 108 bytes
    listener.bind(path.name)
    submit(classroom, "dee").mkdir()
    found = statuses(classroom)
    listener.close()
    assert found["bob/tolerant-client"] == "tolerant-client.ipynb is a FIFO, not a file"
    assert found["cy/tolerant-client"] == "tolerant-client.ipynb is a socket, not a file"
    assert found["dee/tolerant-client"] == "tolerant-client.ipynb is a folder, not a file"


def test_a_missing_notebook_says_what_was_found_instead(classroom):
    path = submit(classroom, "bob")
    shutil.copy(GOOD, path.parent / "my copy.ipynb")
    assert statuses(classroom)["bob/tolerant-client"] == "missing tolerant-client.ipynb (found my copy.ipynb)"


@pytest.mark.parametrize("name", ["evil\x1b[31m[bold red]boom[/]", "star*", "[ab]", ".hidden-but-not", "-rf",
                                  "tab\there", "a" * 101])
def test_student_ids_must_be_usable(classroom, name):
    if name.startswith("."):
        submit(classroom, name, GOOD.read_bytes())  # hidden folders are skipped, as before
        assert set(statuses(classroom)) == {"ada/tolerant-client"}
        return
    submit(classroom, name, GOOD.read_bytes())
    [(key, status)] = [(k, v) for k, v in statuses(classroom).items() if not k.startswith("ada/")]
    assert "is not a usable student id" in status and "\x1b" not in key + status and "\t" not in key + status


def test_ids_in_other_scripts_are_fine(classroom):
    submit(classroom, "José.García", GOOD.read_bytes())
    submit(classroom, "学生42", GOOD.read_bytes())
    assert set(statuses(classroom).values()) == {"graded"}


def test_an_unknown_assignment_is_that_students_problem_when_others_are_known(classroom):
    (classroom / "bob" / "homework-9").mkdir(parents=True)
    assert statuses(classroom)["bob/homework-9"].startswith("unknown assignment (this course has: compat-harness")


def test_only_unknown_assignments_or_nothing_at_all_is_a_usage_error(tmp_path):
    (tmp_path / "class" / "ada" / "homework-9").mkdir(parents=True)
    with pytest.raises(UsageError, match="unknown assignment 'homework-9'"):
        find_submissions(tmp_path / "class", ASSIGNMENTS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="nothing to grade"):
        find_submissions(tmp_path / "empty", ASSIGNMENTS)
    with pytest.raises(UsageError, match="no such folder"):
        find_submissions(tmp_path / "nowhere", ASSIGNMENTS)


def test_parse_accepts_version_3_and_returns_version_4():
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell("1")])])
    notebook, problem = parse_notebook(nbformat.writes(v3, version=3).encode(), "x.ipynb")
    assert problem == "" and notebook.nbformat == 4 and notebook.cells[0].source == "1"


def test_a_copied_lesson_cell_leaves_one_cell_with_its_id_as_nbgrader_would():
    """JupyterLab copies a cell with its nbgrader metadata. nbgrader's autograde keeps the id on
    the last such cell and then stops on the notebook (an entry with no id); the grader drops
    the copies' metadata first, so the notebook is graded and the copies are the learner's."""
    from nbgrader.preprocessors import DeduplicateIds

    notebook = nbformat.read(GOOD, as_version=4)
    locked = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("locked"))
    copy = nbformat.from_dict(json.loads(json.dumps(locked)))
    copy.source, copy.id = "print('my own version')", "copied-cell"
    nameless = nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {"locked": True, "grade": False}})
    notebook.cells += [copy, nameless]
    parsed, problem = parse_notebook(nbformat.writes(notebook).encode(), "x.ipynb")
    assert problem == ""
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in parsed.cells]
    assert ids.count(locked.metadata.nbgrader.grade_id) == 1 and ids[-2] == locked.metadata.nbgrader.grade_id
    assert "nbgrader" not in parsed.cells[-1].metadata
    DeduplicateIds().preprocess(parsed, {})  # nbgrader's own step finds nothing left to empty
    assert all(c.metadata.get("nbgrader", {"grade_id": 1}).get("grade_id") for c in parsed.cells)


def _plant(folder: Path, name: str, kind: str, outside: Path) -> None:
    path = folder / name
    if kind == "link":
        path.symlink_to(outside)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":  # bound by a relative name: the whole path can pass a socket's 107 bytes
        here = os.getcwd()
        os.chdir(folder)
        try:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(name)
            sock.close()
        finally:
            os.chdir(here)
    elif kind == "folder":
        path.mkdir()
    elif kind == "huge":
        path.write_bytes(b"2026-01-01 00:00:00 UTC" + b" " * 2**20)
    elif kind == "binary":
        path.write_bytes(bytes(range(256)))
    elif kind == "words":
        path.write_text("submitted on time, honest")


@pytest.mark.parametrize("kind", ["link", "fifo", "socket", "folder", "huge", "binary", "words"])
def test_submit_notes_of_any_shape_are_read_safely_or_ignored(classroom, tmp_path, kind):
    """nbgrader's timestamp.txt and submission_secret.txt come from the learner's side of the
    exchange: a link, FIFO, socket, folder, huge or garbled file there is never followed, never
    blocks, and only a time nbgrader reads (a secret in nbgrader's form) is kept."""
    outside = tmp_path / "outside.txt"
    outside.write_text("2026-01-01 00:00:00 UTC")  # a valid time, which a link must not carry in
    folder = classroom / "ada" / LESSON
    for name in ("timestamp.txt", "submission_secret.txt"):
        _plant(folder, name, kind, outside)
    [sub] = find_submissions(classroom, ASSIGNMENTS)
    assert sub.status == "graded" and sub.notebook is not None
    assert (sub.timestamp, sub.secret) == ("", "")
    said = " ".join(sub.review)
    assert ("is not a time nbgrader can read" in said) == (kind in ("binary", "words")), sub.review


def test_a_submit_timestamp_and_secret_are_kept_and_make_a_new_submission(classroom):
    folder = classroom / "ada" / LESSON
    [before] = find_submissions(classroom, ASSIGNMENTS)
    (folder / "timestamp.txt").write_text("2026-12-01 10:00:00.123456 UTC\n")
    (folder / "submission_secret.txt").write_text("ab" * 64)
    [after] = find_submissions(classroom, ASSIGNMENTS)
    assert (after.timestamp, after.secret, after.review) == ("2026-12-01 10:00:00.123456 UTC", "ab" * 64, [])
    assert after.fingerprint != before.fingerprint  # the same notebook submitted again is graded again
    (folder / "submission_secret.txt").write_text("../../etc/passwd")
    [odd] = find_submissions(classroom, ASSIGNMENTS)
    assert odd.secret == "" and odd.timestamp  # not a secret nbgrader makes: no feedback released under it
