"""Where a course lives, and how a jupytext master becomes the notebook nbgrader reads.

Masters are `solutions/<lesson>/<lesson>.py` in jupytext's py:percent format, with the nbgrader
cell metadata inline. nbgrader only reads .ipynb, so `source_notebook` writes the notebook
next to its master (git ignores it) and nbgrader is told to ignore *.py, so no master ever
reaches the release.
"""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
from traitlets.config import PyFileConfigLoader

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Course:
    root: Path = REPO

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def lessons(self) -> Path:
        return self.root / "lessons"

    @property
    def config_file(self) -> Path:
        return self.root / "grader" / "nbgrader_config.py"

    def assignments(self) -> list[str]:
        """Every lesson that has a master: solutions/<name>/<name>.py."""
        return sorted(d.name for d in self.solutions.iterdir() if (d / f"{d.name}.py").is_file())

    def master(self, assignment: str) -> Path:
        return self.solutions / assignment / f"{assignment}.py"

    def config(self):
        """grader/nbgrader_config.py, loaded as nbgrader would."""
        return PyFileConfigLoader(self.config_file.name, str(self.config_file.parent)).load_config()

    def course_id(self) -> str:
        return self.config().CourseDirectory.course_id

    def nbgrader_api(self, settings: dict | None = None, **paths: str | Path):
        """nbgrader's API on grader/nbgrader_config.py, with CourseDirectory paths overridden
        (absolute paths) and any other `settings` ({section: {name: value}}) added: what
        `compatlab release` and `compatlab grade` both drive."""
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        with_venv_on_path()
        config = self.config()
        for name, value in paths.items():
            setattr(config.CourseDirectory, name, str(value))
        for section, values in (settings or {}).items():
            for name, value in values.items():
                setattr(config[section], name, value)
        return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def read_master(path: Path) -> nbformat.NotebookNode:
    """A master as a clean notebook: stable cell ids, no jupytext bookkeeping, so that
    regenerating an unchanged lesson gives byte-identical files."""
    notebook = jupytext.read(path)
    notebook.metadata.pop("jupytext", None)
    for index, cell in enumerate(notebook.cells):
        cell.metadata.pop("lines_to_next_cell", None)
        cell.id = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell-{index}"
    return notebook


def source_notebook(course: Course, assignment: str) -> Path:
    """Write solutions/<lesson>/<lesson>.ipynb from its master; return its path."""
    target = course.master(assignment).with_suffix(".ipynb")
    nbformat.write(read_master(course.master(assignment)), target)
    return target


def with_venv_on_path() -> None:
    """nbgrader shells out to `alembic`, which lives beside this Python."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
