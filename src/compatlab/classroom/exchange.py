"""nbgrader's exchange for the classroom: one folder every user can write, root's, with the sticky bit."""

import os
import stat
import shutil

from compatlab.classroom.paths import EXCHANGE


def ensure() -> None:
    """Mode 1777 like /tmp: everyone may create their course folder in it, nobody may rename
    another's. nbgrader resets the root's mode only when its 0o777 bits differ, so the sticky
    bit stays (ExchangeReleaseAssignment.ensure_root)."""
    EXCHANGE.mkdir(parents=True, exist_ok=True)
    for folder in (EXCHANGE.parent, EXCHANGE):  # root's own folders, not links anyone could have made
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
            raise RuntimeError(f"{folder} is not a folder of root's: move it away and run `up` again")
    os.chown(EXCHANGE, 0, 0)
    os.chmod(EXCHANGE, 0o1777)
    os.chmod(EXCHANGE.parent, 0o755)


def remove() -> None:
    """The exchange and everything in it (submissions, released feedback): `down --remove` only."""
    shutil.rmtree(EXCHANGE.parent, ignore_errors=True)
