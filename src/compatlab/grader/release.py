"""`compatlab release` (`make release`): lessons/ and the sample class, regenerated from the masters.

nbgrader's generate_assignment writes the learner's copy: solutions replaced by stubs, hidden
tests removed, cells locked. The sample class is built from that release, so it always
matches the current lesson: the solution filled in, the blank release, and hand-written wrong
answers dropped into their cells. Beside the lessons, the course's own pages, from
solutions/course.toml: lessons/README.md and the start-here notebook (not graded).
"""

import filecmp
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nbformat

from compatlab.grader import demos
from compatlab.grader.course import Course, read_master, source_notebook

SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION")
START_HERE = "start-here"  # solutions/start-here.py → lessons/start-here.ipynb
MAP_MARKER = "<!-- the course map: `compatlab release` writes it here from solutions/course.toml -->"


class ReleaseError(RuntimeError):
    """nbgrader could not generate a lesson."""


@dataclass(frozen=True)
class SampleStudent:
    name: str
    assignment: str
    source: str  # "solution", "release" or a wrong-answer file beside the manifest
    band: tuple[float, float]
    why: str
    loses: tuple[str, ...] = ()  # test cells this submission must score 0 on


def sample_folder(course: Course, assignment: str) -> Path:
    """data/sample-class/<lesson>/: its manifest.toml and its wrong answers."""
    return course.root / "data" / "sample-class" / assignment


def sample_class(course: Course) -> list[SampleStudent]:
    """Every sample submission, lesson by lesson, from data/sample-class/<lesson>/manifest.toml."""
    students = []
    for assignment in course.assignments():
        manifest = sample_folder(course, assignment) / "manifest.toml"
        if manifest.is_file():
            entries = tomllib.loads(manifest.read_text())["students"]
            students += [SampleStudent(name, assignment, entry["source"], tuple(entry["band"]), entry["why"],
                                       tuple(entry.get("loses", ())))
                         for name, entry in entries.items()]
    return students


def generate(course: Course, assignment: str, release_dir: Path, db_path: Path) -> Path:
    """Run nbgrader generate_assignment for one lesson; the released notebook's path."""
    if problems := demos.leaks(read_master(course.master(assignment))):
        raise ReleaseError(f"{assignment}'s demonstrations would change its grades:\n" + "\n".join(problems))
    source_notebook(course, assignment)
    api = course.nbgrader_api(release_directory=release_dir, db_url=f"sqlite:///{db_path}")
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise ReleaseError(f"nbgrader could not release {assignment}:\n{result.get('error') or result.get('log')}")
    return release_dir / assignment / f"{assignment}.ipynb"


def solution_code(source: str) -> str:
    """A solution cell as a learner would have written it: the markers dropped."""
    return "\n".join(line for line in source.splitlines() if not any(m in line for m in SOLUTION_MARKERS))


def reference_code(course: Course, assignment: str, cells: tuple[str, ...]) -> str:
    """The master's setup cell and the named solution cells as one script, markers removed:
    how benchmarks run a lesson's reference solution outside a notebook."""
    by_id = {cell.id: cell.source for cell in read_master(course.master(assignment)).cells}
    missing = [name for name in ("setup", *cells) if name not in by_id]
    if missing:
        raise KeyError(f"{assignment} has no cell {', '.join(missing)}")
    return "\n\n".join(solution_code(by_id[name]) for name in ("setup", *cells))


def mutated_cells(path: Path) -> dict[str, str]:
    """A wrong-answer file: `# %% <grade_id>` headers, each followed by that cell's wrong code."""
    cells: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("# %% "):
            current = line[5:].strip()
            cells[current] = []
        elif current is not None:
            cells[current].append(line)
    return {grade_id: "\n".join(lines).strip("\n") for grade_id, lines in cells.items()}


def submission(course: Course, student: SampleStudent, released: Path) -> nbformat.NotebookNode:
    """The notebook this sample student hands in."""
    notebook = nbformat.read(released, as_version=4)
    if student.source == "release":
        return notebook
    answers = {cell.id: solution_code(cell.source) for cell in read_master(course.master(student.assignment)).cells
               if cell.metadata.get("nbgrader", {}).get("solution")}
    if student.source != "solution":
        wrong = mutated_cells(sample_folder(course, student.assignment) / student.source)
        unknown = sorted(set(wrong) - set(answers))
        if unknown:
            raise ReleaseError(f"{student.source}: no solution cell named {', '.join(unknown)}")
        answers.update(wrong)
    for cell in notebook.cells:
        if cell.id in answers:
            cell.source = answers[cell.id]
    return notebook


def course_map(course: Course) -> str:
    """The lessons in order as a markdown table, linked relative to the release folder."""
    rows = ["| # | lesson | time | builds on |", "|---|---|---|---|"]
    for lesson in course.plan():
        after = ", ".join(f"`{name}`" for name in lesson.prerequisites) or "—"
        rows.append(f"| {lesson.number} | [{lesson.title}]({lesson.name}/{lesson.name}.ipynb) (`{lesson.name}`) "
                    f"| {lesson.time} | {after} |")
    return "\n".join(rows)


def start_here(course: Course) -> nbformat.NotebookNode:
    """solutions/start-here.py with the course map and what a learner needs filled in."""
    notebook = read_master(course.solutions / f"{START_HERE}.py")
    for cell in notebook.cells:
        cell.source = cell.source.replace(MAP_MARKER, course_map(course)).replace("{needs}", course.needs())
    return notebook


def lessons_readme(course: Course) -> str:
    return f"""# lessons/ — the course as released

nbgrader's release of `solutions/`: one folder per lesson, solutions replaced by stubs and hidden
tests removed, and `start-here.ipynb` (the map, how to check your work, a glossary; not graded).
Generated by `make release` from the masters and `solutions/course.toml`, the one source of the
course order; never edit anything here by hand (the tests fail when it differs from a fresh
release).

Learners do not work here. `make lab` (`compatlab lab`) copies these notebooks into the work
folder, `work/` (ignored by git), on first use, and opens JupyterLab there; it never overwrites a
learner's file. When a lesson here changes after it was copied, `make lab` says so and puts the
new version beside the learner's own, as `<lesson>.release-<date>.ipynb`.

{course_map(course)}
"""


def release(course: Course, lessons: Path, sample_submissions: Path) -> list[Path]:
    """Regenerate every lesson, lessons/README.md and the start-here notebook into `lessons`,
    and the sample class into `sample_submissions`."""
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for assignment in course.assignments():
            released = generate(course, assignment, lessons, Path(scratch) / "gradebook.db")
            written.append(released)
        nbformat.write(start_here(course), lessons / f"{START_HERE}.ipynb")
        (lessons / "README.md").write_text(lessons_readme(course))
        written += [lessons / f"{START_HERE}.ipynb", lessons / "README.md"]
        shutil.rmtree(sample_submissions, ignore_errors=True)
        for student in sample_class(course):
            target = sample_submissions / student.name / student.assignment / f"{student.assignment}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(submission(course, student, lessons / student.assignment / target.name), target)
            written.append(target)
    return written


def stale_files(course: Course) -> list[str]:
    """What `make release` would change in lessons/ and the sample class (empty: up to date)."""
    sample = course.root / "data" / "sample-class" / "submitted"
    with tempfile.TemporaryDirectory() as scratch:
        fresh_lessons, fresh_sample = Path(scratch) / "lessons", Path(scratch) / "submitted"
        release(course, fresh_lessons, fresh_sample)
        stale = []
        for fresh_root, kept_root, label in ((fresh_lessons, course.lessons, "lessons"),
                                             (fresh_sample, sample, "data/sample-class/submitted")):
            fresh = {p.relative_to(fresh_root) for p in fresh_root.rglob("*") if p.is_file()}
            # JupyterLab's checkpoints (a lab opened on lessons/ by hand) are not ours
            kept = {p.relative_to(kept_root) for p in kept_root.rglob("*") if p.is_file()
                    and ".ipynb_checkpoints" not in p.parts}
            for path in sorted(fresh | kept):
                if path not in kept or path not in fresh or not filecmp.cmp(fresh_root / path, kept_root / path,
                                                                             shallow=False):
                    stale.append(f"{label}/{path}")
        return stale


def run_release(check: bool) -> int:
    course = Course()
    if check:
        stale = stale_files(course)
        for path in stale:
            print(f"stale: {path}")
        if stale:
            print("lessons/ or the sample class is out of date: run `make release` and commit the result")
            return 1
        print("lessons/ and data/sample-class/ match their masters")
        return 0
    for path in release(course, course.lessons, course.root / "data" / "sample-class" / "submitted"):
        print(f"wrote {path.relative_to(course.root)}")
    return 0
