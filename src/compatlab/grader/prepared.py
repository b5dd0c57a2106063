"""Lessons prepared for a check once, not at every check: nbgrader's gradebook after
`generate_assignment`, cached by the digest of everything that made it.

`compatlab check` grades a class of one in a fresh folder, so every check would create a
gradebook (nbgrader runs `alembic` in a process of its own for that, about 2 s) and run
`generate_assignment` (about 1 s) for the same lesson again. What that gradebook holds depends
only on the lesson's notebook as generated from its master, the course's nbgrader_config.py
and nbgrader's version; it is kept in the checker's own cache folder, named by their digest,
and copied into each check's folder, with the state that tells `grade_class` the lesson is
prepared. `compatlab grade` never reads it.

The gradebook holds the tests nbgrader puts back into a notebook, the hidden ones included, so
the folder must be this user's alone: opened without following links, owned by this user,
mode 0700; otherwise nothing is cached and each check prepares its lessons afresh. Only this
user's checks read it, and this user can read and change the masters the checks are made
from anyway (the checks read them with this user's rights), so it shows or changes nothing
they could not before; a grade is never made from it.
"""

import hashlib
import json
import os
import sqlite3
import stat
from importlib.metadata import version
from pathlib import Path

import nbformat

from compatlab.grader.course import Course, read_master, source_notebook
from compatlab.grader.grade import STATE_FILE, stderr_to
from compatlab.grader.workers import GradingError, last_line

KEEP = 64  # cached gradebooks (about 200 kB each); the oldest go first


def seed(course: Course, masters: dict[str, str], out: Path) -> None:
    """Make `out` a grade_class folder in which the lessons of `masters` (name: digest, as
    grade.Lesson computes it) are prepared and nothing is graded yet."""
    name = f"{key(course, sorted(masters))}.db"
    folder = cache_folder()
    try:
        gradebook = _read(folder, name) if folder is not None else None
        if gradebook is None or not _holds(gradebook, masters):
            gradebook = _generate(course, sorted(masters), out / "prepare")
            if folder is not None:
                _store(folder, name, gradebook)
    finally:
        if folder is not None:
            os.close(folder)
    (out / "nbgrader").mkdir(parents=True)
    (out / "nbgrader" / "gradebook.db").write_bytes(gradebook)
    (out / STATE_FILE).write_text(json.dumps({"masters": masters, "submissions": {}}))


def key(course: Course, lessons: list[str]) -> str:
    """What generate_assignment's gradebook depends on, as one digest."""
    made = {name: nbformat.writes(read_master(course.master(name))) for name in lessons}
    what = [version("nbgrader"), course.config_file.read_text(), made]
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def cache_folder() -> int | None:
    """A descriptor of this user's private cache folder, or None when there is no safe one."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "compatlab" / "check"
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        root.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
        os.close(fd)
        return None
    return fd


def _read(folder: int, name: str) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()


def _holds(gradebook: bytes, masters: dict[str, str]) -> bool:
    """Is it a gradebook with these lessons prepared (not a file cut short)?"""
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(gradebook)
        return {row[0] for row in db.execute("SELECT name FROM assignment")} == set(masters)
    except sqlite3.Error:
        return False
    finally:
        db.close()


def _generate(course: Course, lessons: list[str], work: Path) -> bytes:
    """generate_assignment for each lesson into a new gradebook; its bytes."""
    work.mkdir(parents=True)
    api = course.nbgrader_api(root=work, source_directory=course.solutions, release_directory=work / "release",
                              db_url=f"sqlite:///{work / 'gradebook.db'}")
    with stderr_to(work / "prepare.log"):  # nbgrader's own log
        for lesson in lessons:
            source_notebook(course, lesson)
            result = api.generate_assignment(lesson, force=True, create=True)
            if not result["success"]:
                raise GradingError(f"nbgrader could not prepare {lesson}: "
                                   f"{last_line(result.get('error') or result.get('log'))}")
    return (work / "gradebook.db").read_bytes()


def _store(folder: int, name: str, gradebook: bytes) -> None:
    """Write it whole under a temporary name, then rename: a reader never sees half of it."""
    partial = f".{name}.{os.getpid()}"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(gradebook)
        os.replace(partial, name, src_dir_fd=folder, dst_dir_fd=folder)
        cached = sorted((os.stat(entry, dir_fd=folder, follow_symlinks=False).st_mtime, entry)
                        for entry in os.listdir(folder) if entry.endswith(".db") and not entry.startswith("."))
        for _, entry in cached[:-KEEP]:
            os.unlink(entry, dir_fd=folder)
    except OSError:  # a full disk, another check storing the same: the next check prepares again
        try:
            os.unlink(partial, dir_fd=folder)
        except OSError:
            pass
