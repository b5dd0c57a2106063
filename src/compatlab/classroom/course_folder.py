"""The instructor's course folder, ~instructor/course (0700, theirs): the masters with answers
(solutions/), the release (lessons/), the grader's settings (grader/), the sample class's right
and wrong answers (data/sample-class/: the known mistakes check() names), and an nbgrader_config.py
for nbgrader's commands run in it (release_assignment, collect, release_feedback). The same
settings go to the instructor's ~/.jupyter/nbgrader_config.py, for their formgrader: it reads
the config of the folder the server started in, their home.

Root never writes in the instructor's home itself: it streams the files as a tar archive into a
`tar` that runs as the instructor (runuser), so nothing there, a link included, is followed with
root's rights.
"""

import io
import subprocess
import tarfile
import time
from pathlib import Path

from compatlab.classroom.install import REPO

FOLDERS = ("solutions", "lessons", "grader", "data/sample-class")

NBGRADER_CONFIG = '''\
# Written by `compatlab classroom up` into the course folder (for nbgrader's commands run there)
# and ~/.jupyter (for the formgrader); course_id and the exchange come from the venv's own
# etc/jupyter/nbgrader_config.py.
import os

c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.source_directory = "solutions"  # the masters: answers and hidden tests
c.CourseDirectory.release_directory = "lessons"  # release_assignment copies lessons/<lesson>/
c.CourseDirectory.submitted_directory = "submitted"  # collect writes submitted/<learner>/<lesson>/
# `compatlab grade submitted --out graded` writes feedback nbgrader can release, and its gradebook
c.CourseDirectory.feedback_directory = "graded/nbgrader/feedback"
c.CourseDirectory.db_url = "sqlite:///{root}/graded/nbgrader/gradebook.db"
os.makedirs({root!r} + "/graded/nbgrader", exist_ok=True)  # sqlite makes the file, not its folder
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py", "*.ipynb.orig"]
# formgrader's Autograde (student code outside the sandbox) and Generate feedback (hidden tests in
# the page) refuse here, saying what to run instead (compatlab/grader/refusals.py)
c.Autograde.sanitize_preprocessors = ["compatlab.grader.refusals.UseCompatlabGrade"]
c.GenerateFeedback.preprocessors = ["compatlab.grader.refusals.UseCompatlabFeedback"]
'''


def _archive(root: str) -> bytes:
    """The three folders from the project and the config, as a tar archive (root reads these)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in FOLDERS:
            tar.add(REPO / name, arcname=name, filter=lambda info: None if "__pycache__" in info.name else info)
        config = NBGRADER_CONFIG.format(root=root).encode()
        info = tarfile.TarInfo("nbgrader_config.py")
        info.size, info.mode, info.mtime = len(config), 0o644, int(time.time())
        tar.addfile(info, io.BytesIO(config))
    return buffer.getvalue()


def ensure(instructor: str, home: Path) -> tuple[Path, bool]:
    """Make ~instructor/course once; a later `up` leaves it (and the instructor's edits) alone.
    Returns the folder and whether it was made now."""
    course = home / "course"
    as_instructor = ["runuser", "-u", instructor, "--"]
    if subprocess.run(as_instructor + ["test", "-d", str(course)]).returncode == 0:
        return course, False
    subprocess.run(as_instructor + ["mkdir", "-m", "0700", str(course)], check=True)
    subprocess.run(as_instructor + ["tar", "-C", str(course), "--no-same-owner", "-x"], input=_archive(str(course)),
                   check=True)
    subprocess.run(as_instructor + ["sh", "-c", 'mkdir -p "$1/.jupyter" && cat > "$1/.jupyter/nbgrader_config.py"',
                                    "sh", str(home)], input=NBGRADER_CONFIG.format(root=str(course)).encode(), check=True)
    return course, True
