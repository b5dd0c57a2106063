"""The learner's work folder: their own copy of the release, which `compatlab lab` fills and never overwrites.

lessons/ is generated and tracked: `make release` or a checkout rewrites it, so a learner who
worked there would lose answers. `compatlab lab` copies each released notebook into the work
folder (default `work/`, ignored by git) the first time and records a digest of the release it
copied. On every later start it compares the release with that digest: when the release has
changed, it puts the new version beside the learner's notebook, as
`<lesson>.release-<date>.ipynb`, and says so; the learner's file is never replaced. A notebook
the learner deleted is copied afresh.
"""

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import nbformat

STATE = ".compatlab-release.json"  # a dot file: JupyterLab does not list it


@dataclass(frozen=True)
class Change:
    """One thing `sync` did, as the terminal reports it."""

    kind: str  # "copied", "new-release"
    notebook: Path  # the learner's notebook, relative to the work folder
    beside: Path | None = None  # a new release's copy, relative to the work folder

    def __str__(self) -> str:
        if self.kind == "copied":
            return f"copied {self.notebook} from the release"
        return (f"{self.notebook}: the course has a new version of this lesson. Yours is unchanged; "
                f"the new one is beside it: {self.beside}")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def released_notebooks(lessons: Path) -> list[Path]:
    """The release's notebooks (start-here and one per lesson), relative to lessons/."""
    return sorted(p.relative_to(lessons) for p in lessons.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def copy_notebook(source: Path, target: Path) -> None:
    """Copy a released notebook, adding the Python version the kernel will report, so that
    opening it in JupyterLab does not change it (see course.LANGUAGE_INFO)."""
    notebook = nbformat.read(source, as_version=4)
    notebook.metadata.setdefault("language_info", {})["version"] = sys.version.split()[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)


def _beside(target: Path, today: date) -> Path:
    """A free name next to the learner's notebook for a new release."""
    candidate = target.with_name(f"{target.stem}.release-{today.isoformat()}.ipynb")
    number = 2
    while candidate.exists():
        candidate = target.with_name(f"{target.stem}.release-{today.isoformat()}-{number}.ipynb")
        number += 1
    return candidate


def sync(lessons: Path, work: Path, today: date | None = None) -> list[Change]:
    """Bring the work folder up to date with the release without overwriting any file in it."""
    today = today or date.today()
    state_file = work / STATE
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    changes = []
    for relative in released_notebooks(lessons):
        released, target, key = lessons / relative, work / relative, relative.as_posix()
        now = digest(released)
        seen = state.get(key)
        if not target.exists():
            copy_notebook(released, target)
            state[key] = {"copied": now}
            changes.append(Change("copied", relative))
        elif seen is None:
            state[key] = {"copied": now}  # a work folder from before this file existed: nothing to compare with
        elif now not in (seen.get("copied"), seen.get("offered")):
            beside = _beside(target, today)
            copy_notebook(released, beside)
            state[key] = {**seen, "offered": now}
            changes.append(Change("new-release", relative, beside.relative_to(work)))
    work.mkdir(parents=True, exist_ok=True)
    temporary = state_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, state_file)
    return changes
