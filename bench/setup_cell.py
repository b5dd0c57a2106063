"""A lesson's setup cell: how long its imports and finding its engines take, before and after the
process layer stopped importing the engine (issue I, item 2).

A benchmark, not a test: it prints figures and asserts nothing. The lab engines run first and
are shared through COMPATLAB_ENGINES, as `compatlab grade` shares them, so only the cell's imports
and finding the engines count. Each cell runs in a fresh interpreter (as in a fresh kernel, minus
IPython's own start), timed from inside it, several times; the figure is the median.

"before" is the kit's source at another commit (default ca50fa5, the last one whose
`compatlab.process` imported the engine for its READY line), taken with `git archive` into a
temporary folder and put first on PYTHONPATH; "after" is this tree. Both run the same setup
cells (this tree's masters) in the same run, alternately, so machine load hits both alike.

Run: `.venv/bin/python bench/setup_cell.py [--before ca50fa5] [--repeat 7] [--lessons first-contact ...]`.
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from compatlab.backends import ENGINES_VARIABLE, LESSON_ENGINES, lab_engines, stop_lab_engines
from compatlab.grader.course import REPO, Course
from compatlab.grader.release import reference_code

ENGINE_PACKAGES = ("fastapi", "uvicorn", "starlette")  # not pydantic: the openai SDK needs it too
# The process layer alone: find two shared engines, as every lesson does first.
FIND_ONLY = 'from compatlab.backends import lab_engines\nENGINES = lab_engines(("ollama", "paced"))'
# In the child: run the cell, then report its time, what it loaded, and which tree it ran.
CHILD = f"""
import json, sys, time
start = time.perf_counter()
exec(compile(sys.argv[1], "setup cell", "exec"), {{}})
seconds = time.perf_counter() - start
import compatlab
engine = [m for m in sys.modules if m.split(".")[0] in {ENGINE_PACKAGES!r} or m.startswith("compatlab.engine")]
print(json.dumps({{"seconds": seconds, "modules": len(sys.modules), "engine_modules": len(engine),
                  "tree": compatlab.__file__}}))
"""


def source_at(ref: str, into: Path) -> Path:
    """The package source (and the traces a setup cell reads) at `ref`, unpacked under `into`;
    returns the folder for PYTHONPATH."""
    archive = subprocess.run(["git", "archive", ref, "src", "data/traces"], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run_cell(code: str, env: dict[str, str], cwd: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, code], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="ca50fa5", help="the commit to compare with (default: ca50fa5)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per cell and tree (default: 7)")
    parser.add_argument("--lessons", nargs="*", default=None, help="default: every lesson")
    args = parser.parse_args()
    course = Course()
    cells = {"lab_engines() alone": FIND_ONLY}
    cells.update({lesson: reference_code(course, lesson, ()) for lesson in args.lessons or course.assignments()})

    shared = lab_engines(tuple(LESSON_ENGINES))  # started once, with this tree; both trees find them
    base = {**os.environ, ENGINES_VARIABLE: json.dumps(shared), "MPLBACKEND": "Agg"}
    base.pop("PYTHONPATH", None)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="setup-cell-") as tmp:
        trees = {"before": {**base, "PYTHONPATH": str(source_at(args.before, Path(tmp)))}, "after": base}
        runs = {(cell, tree): [] for cell in cells for tree in trees}
        for repetition in range(args.repeat):
            for cell, code in cells.items():
                order = list(trees) if repetition % 2 == 0 else list(reversed(trees))
                for tree in order:
                    runs[cell, tree].append(run_cell(code, trees[tree], tmp))
    stop_lab_engines()

    for cell in cells:  # each tree ran the source it was meant to
        assert runs[cell, "before"][0]["tree"].startswith(tmp) and not runs[cell, "after"][0]["tree"].startswith(tmp)
    print(f"Setup cells, {args.repeat} fresh interpreters each, engines shared; before = {args.before}, "
          f"after = this tree. Load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end, "
          f"{os.cpu_count()} CPUs.")
    print(f"{'cell':<22} {'before s':>9} {'after s':>9} {'saved ms':>9} {'ratio':>6}   "
          f"{'modules before/after':>20}   {'engine modules':>14}")
    for cell in cells:
        before = statistics.median(run["seconds"] for run in runs[cell, "before"])
        after = statistics.median(run["seconds"] for run in runs[cell, "after"])
        first_before, first_after = runs[cell, "before"][0], runs[cell, "after"][0]
        print(f"{cell:<22} {before:>9.3f} {after:>9.3f} {1000 * (before - after):>9.0f} {before / after:>5.2f}x   "
              f"{first_before['modules']:>9} / {first_after['modules']:<9}  "
              f"{first_before['engine_modules']:>5} / {first_after['engine_modules']:<5}")
    print("(engine modules: fastapi, uvicorn, starlette and compatlab.engine.*, including those a lesson "
          "loads itself to teach FastAPI or serve an app)")


if __name__ == "__main__":
    main()
