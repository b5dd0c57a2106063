"""The kit installed for every user, in /opt/compatlab: `kit/` (the project without its answers),
`venv/` (Debian's Python, so learners can run it) and `proxy/` (configurable-http-proxy from npm).

The project's own venv cannot serve learners: it lives under /root (0700) and its base Python is
pyenv's, also under /root; a venv's pyvenv.cfg points at that base. So the classroom gets a venv
of its own, made with /usr/bin/python3 (apt's python3-venv), world-readable.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

from compatlab.classroom.paths import CHP, COURSE_ID, EXCHANGE, KIT, OPT, PROXY, VENV

REPO = Path(__file__).resolve().parents[3]
SYSTEM_PYTHON = "/usr/bin/python3"
# What learners must never read (answers, hidden tests, other people's work) and what is not the kit.
# solutions/: the masters; data/sample-class/: answers right and wrong; tests/: they read both.
LEFT_OUT_AT_TOP = {"solutions", "tests", ".git", ".venv", "build", "work"}
LEFT_OUT_ANYWHERE = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", ".ipynb_checkpoints")
# The venv's own nbgrader settings, read by every nbgrader command run with it (sys.prefix/etc/jupyter).
NBGRADER_SYSTEM_CONFIG = f'''\
# Written by `compatlab classroom up`: what every user's nbgrader shares.
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "{COURSE_ID}"
c.Exchange.root = "{EXCHANGE}"  # nbgrader's default is /usr/local/share/nbgrader/exchange
'''


def _ignore(folder: str, names: list[str]) -> set[str]:
    here = Path(folder)
    left_out = set(LEFT_OUT_ANYWHERE(folder, names))
    if here == REPO:
        left_out |= LEFT_OUT_AT_TOP & set(names)
    if here == REPO / "data":
        left_out |= {"sample-class"} & set(names)
    return left_out


def copy_kit() -> None:
    """A fresh copy each `up`, swapped in whole, so a file removed from the project goes too.
    Running servers import from it (an editable install): the swap is two renames."""
    if REPO == KIT:
        raise RuntimeError(f"run `compatlab classroom up` from the project, not from {KIT}")
    fresh, old = KIT.with_name("kit.new"), KIT.with_name("kit.old")
    for stale in (fresh, old):
        shutil.rmtree(stale, ignore_errors=True)
    shutil.copytree(REPO, fresh, ignore=_ignore, symlinks=True)
    if KIT.exists():
        KIT.rename(old)
    fresh.rename(KIT)
    shutil.rmtree(old, ignore_errors=True)


def install_venv() -> None:
    """Debian's Python, the kit installed editable (so a new kit copy needs no reinstall), and
    JupyterHub for jupyterhub-singleuser; again only when pyproject.toml changed."""
    if not Path(SYSTEM_PYTHON).exists() or subprocess.run([SYSTEM_PYTHON, "-c", "import ensurepip"],
                                                          capture_output=True).returncode:
        raise RuntimeError("Debian's python3 with venv is needed: apt-get install python3-venv")
    stamp = VENV / f".installed-{hashlib.sha256((KIT / 'pyproject.toml').read_bytes()).hexdigest()[:16]}"
    if stamp.exists():
        return
    if not (VENV / "bin" / "python").exists():
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-e", f"{KIT}[classroom]"], check=True)
    for old in VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()


def install_proxy() -> None:
    """configurable-http-proxy from npm, in a folder of its own (no global install, no lock file).
    Not PyPI's package of that name, which is a different project."""
    if CHP.exists():
        return
    if not shutil.which("npm"):
        raise RuntimeError("npm is needed for configurable-http-proxy: install Node.js 20 or newer")
    subprocess.run(["npm", "install", "--no-package-lock", "--no-audit", "--no-fund", "--loglevel=error",
                    "--prefix", str(PROXY), "configurable-http-proxy@5"], check=True)


def write_system_config() -> None:
    folder = VENV / "etc" / "jupyter"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbgrader_config.py").write_text(NBGRADER_SYSTEM_CONFIG)


def install() -> None:
    OPT.mkdir(parents=True, exist_ok=True)
    copy_kit()
    install_proxy()
    install_venv()
    write_system_config()
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(OPT)], check=True)  # root's files only: no links to follow
