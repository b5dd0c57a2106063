"""Where a course lives, and how a jupytext master becomes the notebook nbgrader reads.

Masters are `solutions/<lesson>/<lesson>.py` in jupytext's py:percent format, with the nbgrader
cell metadata inline. nbgrader only reads .ipynb, so `source_notebook` writes the notebook
next to its master (git ignores it) and nbgrader is told to ignore *.py, so no master ever
reaches the release.
"""

import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
from traitlets.config import PyFileConfigLoader

REPO = Path(__file__).resolve().parents[3]
# A classroom keeps the masters (answers, hidden tests) in the instructor's folder, not in the
# kit every learner can read: there this names the course's root (README, "Running a classroom").
COURSE_VARIABLE = "COMPATLAB_COURSE"


def course_root() -> Path:
    """The course's root: COMPATLAB_COURSE when set, else this kit's own folder."""
    return Path(os.environ[COURSE_VARIABLE]).resolve() if os.environ.get(COURSE_VARIABLE) else REPO


class CourseFileError(ValueError):
    """solutions/course.toml and the masters disagree."""


@dataclass(frozen=True)
class LessonPlan:
    """One lesson as solutions/course.toml lists it."""

    number: int
    of: int  # how many lessons the course has
    name: str
    title: str
    time: str
    prerequisites: tuple[str, ...]

    @property
    def heading(self) -> str:
        """The notebook's title, its master's first line: `Lesson 2 of 7 · A compatibility harness`."""
        return f"Lesson {self.number} of {self.of} · {self.title}"


@dataclass(frozen=True)
class Course:
    root: Path = field(default_factory=course_root)

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def lessons(self) -> Path:
        return self.root / "lessons"

    @property
    def config_file(self) -> Path:
        return self.root / "grader" / "nbgrader_config.py"

    @property
    def course_file(self) -> Path:
        return self.solutions / "course.toml"

    def plan(self) -> list[LessonPlan]:
        """The lessons in course order, from solutions/course.toml; each must have a master."""
        lessons = tomllib.loads(self.course_file.read_text())["lesson"]
        plan = [LessonPlan(number, len(lessons), entry["name"], entry["title"], entry["time"],
                           tuple(entry.get("prerequisites", ()))) for number, entry in enumerate(lessons, 1)]
        names = [lesson.name for lesson in plan]
        masters = {d.name for d in self.solutions.iterdir() if (d / f"{d.name}.py").is_file()}
        problems = [f"{name} is listed twice" for name in sorted(set(names)) if names.count(name) > 1]
        problems += [f"{name} has no master solutions/{name}/{name}.py" for name in names if name not in masters]
        problems += [f"solutions/{name}/{name}.py is not listed" for name in sorted(masters - set(names))]
        problems += [f"{lesson.name} needs {before}, which does not come before it"
                     for lesson in plan for before in lesson.prerequisites if before not in names[:lesson.number - 1]]
        if problems:
            raise CourseFileError(f"{self.course_file}: " + "; ".join(problems))
        return plan

    def assignments(self) -> list[str]:
        """Every lesson, in course order (solutions/course.toml)."""
        return [lesson.name for lesson in self.plan()]

    def needs(self) -> str:
        """What a learner should know before the first lesson."""
        return tomllib.loads(self.course_file.read_text())["needs"]

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
        alembic_head_in_process()
        config = self.config()
        for name, value in paths.items():
            setattr(config.CourseDirectory, name, str(value))
        for section, values in (settings or {}).items():
            for name, value in values.items():
                setattr(config[section], name, value)
        return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


# What ipykernel reports as `language_info` (IPythonKernel.language_info), less the Python
# version, which depends on the machine: JupyterLab writes the kernel's language_info into a
# notebook it opens, which marks a notebook without it modified and makes autosave rewrite it.
# `compatlab lab` adds the version when it copies a lesson into the work folder (lab.py).
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}


def read_master(path: Path) -> nbformat.NotebookNode:
    """A master as a clean notebook: stable cell ids, no jupytext bookkeeping, so that
    regenerating an unchanged lesson gives byte-identical files."""
    notebook = jupytext.read(path)
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["language_info"] = dict(LANGUAGE_INFO)
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


def alembic_head_in_process() -> None:
    """nbgrader stamps a new gradebook with alembic's head revision, which it asks a subprocess
    for (`alembic heads`, nbgrader/api.py get_alembic_version): a second Python that imports
    SQLAlchemy, about 1 s, on the way to every first grade. alembic's own API gives the same
    revision from nbgrader's migration scripts in this process, in about 75 ms."""
    import nbgrader.api

    nbgrader.api.get_alembic_version = _alembic_head


def _alembic_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    config = Config()
    config.set_main_option("script_location", ALEMBIC_DIR)
    return ScriptDirectory.from_config(config).get_current_head()
