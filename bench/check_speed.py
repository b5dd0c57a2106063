"""`compatlab check` speed: seconds from the call to the verdicts, one lesson's notebook at a time.

A benchmark, not a test: it prints figures and asserts nothing. For each lesson of the course, the
reference solution and one wrong answer (the first in the lesson's sample-class manifest): a
fresh copy of the notebook, in a folder of its own, checked by `compatlab check NOTEBOOK --json`
in a new process, as `check()` in a lesson does it; timed from the call to the process's exit.
Prints each check, the median and the load average; the target (issue I) is a median of 5 s
or less on 2 cores.

--against DIR also times another checkout (DIR holding its own .venv, e.g. the commit before a
change), each notebook checked by both, one after the other, the order alternating: the
machine is noisy, so a before/after ratio is measured in one run.
--rounds N checks every notebook N times.
--breakdown checks each notebook once more (this checkout only), timing the phases of the
check inside its process: start and imports, preparing the lesson (reading the master, the
cached gradebook), the lab engines and nbgrader's start, nbgrader's autograde outside the
sandbox, the sandbox (its start, the kernel's start and the notebook's cells), and what is
left (the verdicts read, the engines stopped, the process's exit).

Run: `.venv/bin/python bench/check_speed.py [--rounds 2] [--against /tmp/check-base]`.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample-class"


def notebooks() -> list[tuple[str, str]]:
    """(lesson, student): each lesson's reference solution and its first wrong answer, in course order."""
    lessons = [entry["name"] for entry in tomllib.loads((REPO / "solutions" / "course.toml").read_text())["lesson"]]
    chosen = []
    for lesson in lessons:
        students = tomllib.loads((SAMPLE / lesson / "manifest.toml").read_text())["students"]
        wrong = next(name for name, entry in students.items() if entry["source"].endswith(".py"))
        chosen += [(lesson, "reference-solution"), (lesson, wrong)]
    return chosen


def fresh_copy(lesson: str, student: str, scratch: Path, repo: Path = REPO) -> Path:
    """The sample student's notebook (as `repo` releases it: its lessons may differ), copied into a
    folder of its own named after the lesson."""
    folder = Path(tempfile.mkdtemp(dir=scratch)) / lesson
    folder.mkdir()
    notebook = folder / f"{lesson}.ipynb"
    shutil.copyfile(repo / "data" / "sample-class" / "submitted" / student / lesson / f"{lesson}.ipynb", notebook)
    return notebook


def env_for(python: Path) -> dict[str, str]:
    """What check() gives the command: its Python's folder first on PATH."""
    return {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def check_once(repo: Path, lesson: str, student: str, scratch: Path) -> tuple[float, dict]:
    """One `compatlab check --json` of a fresh copy, in a new process of `repo`'s own venv:
    (seconds, its report)."""
    python = repo / ".venv" / "bin" / "python"
    notebook = fresh_copy(lesson, student, scratch, repo)
    start = time.perf_counter()
    done = subprocess.run([str(python), "-m", "compatlab", "check", str(notebook), "--json"],
                          capture_output=True, text=True, env=env_for(python), cwd=notebook.parent, timeout=600)
    seconds = time.perf_counter() - start
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {"status": f"no report (exit {done.returncode}): {done.stderr.strip()[-300:]}"}
    return seconds, report


PHASES = "PHASES "


def timed_check(notebook: str) -> None:
    """--phases NOTEBOOK: this process is the check; print when each phase began and ended."""
    from compatlab.cli import main
    from compatlab.grader import autograde, check, sandbox, workers  # noqa: F401 -- check: imported as `compatlab check` does

    stamps = {"imported": time.time()}

    def timing(module, name):
        function = getattr(module, name)

        def timed(*args, **kwargs):
            stamps.setdefault(f"{name} start", time.time())
            try:
                return function(*args, **kwargs)
            finally:
                stamps[f"{name} end"] = time.time()
        setattr(module, name, timed)

    for module, name in ((autograde.Autograder, "__init__"), (workers, "grade_one"), (sandbox, "run")):
        timing(module, name)
    main(["check", notebook, "--json"])
    print(PHASES + json.dumps({**stamps, "end": time.time()}), flush=True)


def breakdown(lesson: str, student: str, scratch: Path) -> dict[str, float]:
    """One check of a fresh copy, timed phase by phase (this checkout: grading in its process)."""
    notebook = fresh_copy(lesson, student, scratch)
    start = time.time()
    done = subprocess.run([sys.executable, __file__, "--phases", str(notebook)], capture_output=True, text=True,
                          env=env_for(Path(sys.executable)), cwd=notebook.parent, timeout=600)
    exited = time.time()
    line = next((line for line in done.stdout.splitlines() if line.startswith(PHASES)), None)
    if line is None:
        return {}
    t = json.loads(line[len(PHASES):])
    return {"start+imports": t["imported"] - start,
            "lesson+gradebook": t["__init__ start"] - t["imported"],
            "engines+nbgrader": t["grade_one start"] - t["__init__ start"],
            "autograde": (t["grade_one end"] - t["grade_one start"]) - (t["run end"] - t["run start"]),
            "sandbox": t["run end"] - t["run start"],
            "rest": exited - t["grade_one end"],
            "total": exited - start}


def verdict(report: dict) -> str:
    if "error" in report:
        return f"error: {report['error'][:60]}"
    if report.get("status") != "graded":
        return str(report.get("status"))[:70]
    return f"{report['score']:g}/{report['max_score']:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", type=Path, help="another checkout with its own .venv, timed alongside")
    parser.add_argument("--breakdown", action="store_true", help="also time each check's phases (this checkout)")
    parser.add_argument("--phases", metavar="NOTEBOOK", help=argparse.SUPPRESS)  # see timed_check
    args = parser.parse_args()
    if args.phases:
        timed_check(args.phases)
        return
    checkouts = {"this": REPO}  # each checkout's own venv and sample class
    if args.against:
        checkouts["against"] = args.against.resolve()
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the start")
    header = f"{'lesson':<18} {'student':<34}" + "".join(f" {name + ' s':>10} {'verdict':>9}" for name in checkouts)
    print(header)
    with tempfile.TemporaryDirectory(prefix="check-speed-") as scratch:
        run = 0
        for round_ in range(args.rounds):
            for lesson, student in notebooks():
                order = list(checkouts) if run % 2 == 0 else list(reversed(checkouts))
                run += 1
                row = {}
                for name in order:
                    row[name] = check_once(checkouts[name], lesson, student, Path(scratch))
                    times[name].append(row[name][0])
                print(f"{lesson:<18} {student:<34}"
                      + "".join(f" {row[name][0]:10.2f} {verdict(row[name][1]):>9}" for name in checkouts), flush=True)
        if args.breakdown:
            rows = [(lesson, student, breakdown(lesson, student, Path(scratch))) for lesson, student in notebooks()]
            names = next((list(phases) for *_, phases in rows if phases), [])
            print(f"\nphases, seconds (one more check each, this checkout)\n{'lesson':<18} {'student':<34}"
                  + "".join(f" {name:>16}" for name in names))
            for lesson, student, phases in rows:
                print(f"{lesson:<18} {student:<34}"
                      + "".join(f" {phases.get(name, float('nan')):16.2f}" for name in names))
            print(f"{'median':<53}" + "".join(
                f" {statistics.median(p[name] for *_, p in rows if p):16.2f}" for name in names))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.2f} s, min {min(values):.2f}, max {max(values):.2f} "
              f"over {len(values)} checks ({checkouts[name]})")
    if args.against:
        ratio = statistics.median(times["against"]) / statistics.median(times["this"])
        print(f"median ratio against/this: {ratio:.2f}x")


if __name__ == "__main__":
    main()
