"""Reading a class's submissions, none of which is trusted.

SUBMISSIONS_DIR is nbgrader's submitted layout, `<student>/<assignment>/<assignment>.ipynb`,
and often comes from students: a folder, a link, a FIFO or a 2 GB file can stand where a
notebook should. The grader may be root. So:

- the tree is walked through file descriptors, each step opened with O_NOFOLLOW: a symbolic
  link is never followed, at any level, and what it pointed to is never read;
- a notebook must be a regular file (a FIFO, socket or device is opened non-blocking and
  refused, never read) under `MAX_NOTEBOOK_BYTES`, read once, at most that many bytes;
- its bytes must be UTF-8 JSON of a version-4 (or 3) notebook that validates; nesting too deep
  for Python is a reason like any other, not a crash;
- a student's folder name must be a usable id: nbgrader uses ids in paths and as file globs.

Each problem becomes that submission's status; the rest of the class is graded. What the
grader hands to nbgrader is the notebook rewritten from the parsed copy, never the file as sent.

nbgrader's `submit` writes two small files beside the notebook: timestamp.txt (when the learner
submitted: the gradebook's timestamp, which makes a submission late) and submission_secret.txt
(what `release_feedback` names the learner's feedback by). Each is read the same way, at most
a kilobyte, and kept only in the form nbgrader writes it.
"""

import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from compatlab.grader.safe_text import plain

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_NOTE_BYTES = 1024  # timestamp.txt and submission_secret.txt: one line each
SECRET = re.compile(r"[0-9a-f]{32,128}")  # nbgrader's: 64 random bytes, in hex
# letters and digits of any script, then also . _ @ + -; no glob characters, no spaces, no
# leading dot or dash (hidden files, command-line options, spreadsheet formulas)
STUDENT_ID = re.compile(r"[^\W_][\w.@+-]{0,99}")


class UsageError(Exception):
    """The command cannot start: a missing folder, nothing to grade, only unknown assignments."""


@dataclass
class Submission:
    student: str
    assignment: str
    problem: str = ""  # why it cannot be graded; "" if it can
    fingerprint: str = ""  # the notebook's digest: a later run regrades it only if this changes
    notebook: nbformat.NotebookNode | None = None  # parsed and checked, until written for nbgrader
    score: float | None = None
    max_score: float | None = None
    cells: dict[str, tuple[float, float]] = field(default_factory=dict)  # grade_id -> (score, max)
    review: list[str] = field(default_factory=list)  # why an instructor should look at it
    timestamp: str = ""  # when nbgrader's submit says it was submitted (timestamp.txt), or ""
    secret: str = ""  # submission_secret.txt: what its feedback is released under, or ""
    submitted_at: object = None  # the timestamp, read (UTC); with due and late from the gradebook
    due: object = None
    seconds_late: float = 0.0
    late_penalty: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.student}/{self.assignment}"

    @property
    def status(self) -> str:
        return self.problem or "graded"


def find_submissions(folder: Path, assignments: list[str]) -> list[Submission]:
    """Every <student>/<assignment>/ under folder, read and checked; problems become statuses."""
    try:
        top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)  # the instructor's own folder: followed
    except OSError:
        raise UsageError(f"no such folder: {folder}") from None
    found: list[Submission] = []
    unknown: list[str] = []
    try:
        for student, kind in _entries(top):
            if kind == "link":
                found.append(Submission(plain(student), "-", "the student's folder is a symbolic link; not followed"))
                continue
            if kind != "dir":
                continue  # a stray file beside the students' folders
            found += _student(top, student, assignments, unknown)
    finally:
        os.close(top)
    if not any(s.assignment in assignments for s in found):
        if unknown:
            raise UsageError(f"unknown assignment {unknown[0]!r}; this course has: {', '.join(assignments)}")
        raise UsageError(f"nothing to grade in {folder}: expected {folder}/<student>/<assignment>/<notebook>.ipynb")
    found.sort(key=lambda sub: (sub.assignment, sub.student))  # the table reads lesson by lesson
    return found


def _entries(dir_fd: int) -> list[tuple[str, str]]:
    """(name, "dir" | "link" | "other") for each visible entry, without following links."""
    entries = []
    with os.scandir(dir_fd) as listing:
        for entry in listing:
            if entry.name.startswith("."):
                continue
            kind = "link" if entry.is_symlink() else "dir" if entry.is_dir(follow_symlinks=False) else "other"
            entries.append((entry.name, kind))
    return sorted(entries)


def _student(top: int, student: str, assignments: list[str], unknown: list[str]) -> list[Submission]:
    name = plain(student)
    if not STUDENT_ID.fullmatch(student):
        return [Submission(name, "-", f"the folder name {name!r} is not a usable student id "
                                      "(letters and digits first, then letters, digits and . _ @ + - only)")]
    try:
        student_fd = os.open(student, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
    except OSError as exc:
        return [Submission(name, "-", f"the student's folder cannot be opened ({os.strerror(exc.errno)})")]
    found = []
    try:
        for assignment, kind in _entries(student_fd):
            if assignment not in assignments:
                if kind == "dir":
                    unknown.append(plain(assignment))
                    found.append(Submission(name, plain(assignment),
                                            f"unknown assignment (this course has: {', '.join(assignments)})"))
                continue
            submission = Submission(student, assignment)
            if kind == "link":
                submission.problem = "the assignment folder is a symbolic link; not followed"
            elif kind != "dir":
                submission.problem = "the assignment is not a folder"
            else:
                _read(student_fd, submission)
            found.append(submission)
    finally:
        os.close(student_fd)
    return found


def _read(student_fd: int, submission: Submission) -> None:
    """Open, read, parse and check <assignment>/<assignment>.ipynb; fill in the notebook or the problem."""
    filename = f"{submission.assignment}.ipynb"
    try:
        folder = os.open(submission.assignment, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=student_fd)
    except OSError as exc:
        submission.problem = f"the assignment folder cannot be opened ({os.strerror(exc.errno)})"
        return
    try:
        data = _read_notebook_file(folder, filename)
        notes = [_read_note(folder, name) for name in ("timestamp.txt", "submission_secret.txt")]
    except _Refused as exc:
        if exc.missing:
            others = sorted(plain(n) for n, kind in _entries(folder) if n.endswith(".ipynb"))
            submission.problem = f"missing {filename}" + (f" (found {', '.join(others)})" if others else "")
        else:
            submission.problem = str(exc)
        return
    finally:
        os.close(folder)
    submission.notebook, submission.problem = parse_notebook(data, filename)
    submission.timestamp, submission.secret, note = submission_notes(*notes)
    if note:
        submission.review.append(note)
    # a new timestamp is a new submission (a late one, perhaps), even with the same notebook
    submission.fingerprint = hashlib.sha256(data + b"\0" + submission.timestamp.encode()).hexdigest()


def _read_note(folder: int, name: str) -> bytes | None:
    """A small file beside the notebook, never followed, never more than MAX_NOTE_BYTES; None if
    it is absent or is not a small regular file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MAX_NOTE_BYTES + 1)
        return data if len(data) <= MAX_NOTE_BYTES else None
    except OSError:
        return None
    finally:
        os.close(fd)


def submission_notes(timestamp: bytes | None, secret: bytes | None) -> tuple[str, str, str]:
    """(timestamp, secret, a note for the instructor or ""): each as nbgrader reads it, or ""."""
    note = ""
    text = ""
    if timestamp is not None:
        # only here: importing nbgrader takes 0.5 s, and a check's notebook has no timestamp
        from nbgrader.utils import parse_utc

        text = timestamp.decode("utf-8", "replace").strip()
        try:
            if not text or len(text.split()) > 3:
                raise ValueError(text)
            parse_utc(text)
        except (ValueError, OverflowError, TypeError):
            note = (f"its timestamp.txt ({plain(text, 60)!r}) is not a time nbgrader can read: graded as if it had "
                    "none, so it cannot be late")
            text = ""
    key = secret.decode("ascii", "replace").strip() if secret is not None else ""
    return text, key if SECRET.fullmatch(key) else "", note


class _Refused(Exception):
    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def _read_notebook_file(folder: int, filename: str) -> bytes:
    try:
        fd = os.open(filename, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise _Refused("", missing=True) from None
        if exc.errno == errno.ELOOP:
            raise _Refused(f"{filename} is a symbolic link; the grader does not follow links") from None
        try:  # a socket cannot be opened at all (ENXIO): say what it is
            mode = os.stat(filename, dir_fd=folder, follow_symlinks=False).st_mode
            if not stat.S_ISREG(mode):
                raise _Refused(f"{filename} is {_kind(mode)}, not a file") from None
        except OSError:
            pass
        raise _Refused(f"{filename} cannot be opened ({os.strerror(exc.errno)})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(f"{filename} is {_kind(info.st_mode)}, not a file")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise _Refused(f"{filename} is {info.st_size / 2**20:.1f} MB, over the "
                           f"{MAX_NOTEBOOK_BYTES // 2**20} MB limit for a notebook")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_NOTEBOOK_BYTES:  # it grew while we read
                raise _Refused(f"{filename} is over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit for a notebook")
        return b"".join(chunks)
    except OSError as exc:
        raise _Refused(f"{filename} cannot be read ({os.strerror(exc.errno)})") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a regular file"


def parse_notebook(data: bytes, filename: str) -> tuple[nbformat.NotebookNode | None, str]:
    """(the notebook as version 4, "") or (None, why it is not one nbgrader can grade)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"{filename} is not UTF-8 text (byte {exc.start} is not valid)"
    try:
        raw = json.loads(text)
    except RecursionError:
        return None, f"{filename} nests too deeply to be a notebook"
    except ValueError as exc:
        return None, f"{filename} is not valid JSON (line {getattr(exc, 'lineno', '?')})"
    if not isinstance(raw, dict):
        return None, f"{filename} is not a Jupyter notebook (not a JSON object)"
    version = raw.get("nbformat")
    if type(version) is not int or version not in (3, 4):
        return None, f"{filename} is not a notebook version nbgrader can grade (nbformat {plain(repr(version), 40)}; expected 4)"
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except RecursionError:
        return None, f"{filename} nests too deeply to be a notebook"
    except Exception as exc:  # noqa: BLE001 -- nbformat and jsonschema raise many kinds
        detail = plain(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 120)
        return None, f"{filename} is not a valid Jupyter notebook ({detail})"
    if problem := _grading_metadata_problem(notebook):
        return None, f"{filename}: {problem}"
    _drop_copied_ids(notebook)
    return notebook, ""


FLAGS = ("grade", "solution", "locked", "task")


def _grading_metadata_problem(notebook) -> str:
    """nbformat allows any metadata; nbgrader (and the grader) read `metadata.nbgrader` as an
    object with a string id, boolean flags and numeric points."""
    for number, cell in enumerate(notebook.cells, 1):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        if not isinstance(meta, dict):
            return f"cell {number}'s nbgrader metadata is not an object"
        if "grade_id" in meta and not isinstance(meta["grade_id"], str):
            return f"cell {number}'s nbgrader grade_id is not a string"
        if any(flag in meta and not isinstance(meta[flag], bool) for flag in FLAGS):
            return f"cell {number}'s nbgrader flags are not true or false"
        points = meta.get("points", 0)
        if isinstance(points, bool) or not isinstance(points, (int, float)):
            return f"cell {number}'s nbgrader points are not a number"
    return ""


def _drop_copied_ids(notebook) -> None:
    """A cell copied in JupyterLab keeps its nbgrader metadata, grade_id included. nbgrader's
    autograde then stops on the whole notebook: DeduplicateIds empties the metadata of all but the
    last cell with that id, and OverwriteCells cannot read an entry without one (KeyError). So,
    as nbgrader intends, the last cell with an id keeps it, and the others (and any entry with no
    id) become the learner's own cells. A locked cell's source still comes back from the
    gradebook, and a test cell that is gone is put back (OverwriteCells)."""
    seen = set()
    for cell in reversed(notebook.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if "nbgrader" in cell.metadata and (grade_id is None or grade_id in seen):
            del cell.metadata["nbgrader"]
        seen.add(grade_id)


def write_notebook(notebook: nbformat.NotebookNode, folder: Path, assignment: str, timestamp: str = "",
                   secret: str = "") -> None:
    """The checked notebook, rewritten by the grader into a folder only the grader writes, with
    the submission's timestamp and secret as nbgrader's autograde and release_feedback read them."""
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / f"{assignment}.ipynb")
    for name, text in (("timestamp.txt", timestamp), ("submission_secret.txt", secret)):
        if text:
            (folder / name).write_text(text)
