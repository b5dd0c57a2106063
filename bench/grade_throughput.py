"""Grading throughput: plain serial nbgrader against `compatlab grade --workers 2`.

A benchmark, not a test: it prints figures and asserts nothing. One run, on one machine:

1. a generated class: N students per lesson, each handing in one of that lesson's sample-class
   notebooks (the reference solution and the wrong answers, in turn);
2. serial nbgrader, as an instructor runs it by hand, in this process and unsandboxed: one
   course, `generate_assignment` per lesson, `autograde` for one student after another, and
   `generate_feedback` for each, since `compatlab grade` hands back feedback too. Timed whole,
   and the `autograde` loop alone;
3. `compatlab grade CLASS --workers 2` as a subprocess: its whole run (engines, generate,
   grading, feedback, report), sandboxed as always; as shipped, which leaves out the lessons'
   demonstrations (cells that grade nothing: grader/demos.py), and again with `--run-demos`,
   which runs every cell serial nbgrader runs.

Both share one set of lab engines per run, as `compatlab grade` does (COMPATLAB_ENGINES), so
the kernels do the same work, and both kernels find certificates the same way: SSL_CERT_DIR,
as compatlab's sandboxes set it (sandbox.CERTIFICATE_DIR), and no SSL_CERT_FILE. httpx builds
an SSL context for every client it makes, from SSL_CERT_FILE or certifi's bundle when it is not
given a directory: 15 to 22 ms each here, and the lessons make hundreds. Either run would be
slower for a reason that has nothing to do with grading. The serial run's engines start before
its clock does; compatlab's start within its run.
Reported: wall time of each, two ratios for each compatlab run (whole job against whole job,
the like-for-like one; and compatlab's whole run against serial `autograde` alone, which leaves
out nbgrader's generate and feedback steps but none of compatlab's), and whether every score is
identical.
Target (issue I): >= 3x on 2 cores with identical scores.

4. the cells alone: the notebooks nbgrader graded (their code as it ran, hidden tests included),
   one after another in one Python process that has imported what they use: no kernel, no
   nbgrader, no sandbox. No grader takes less per notebook, so with W workers no grader can
   beat serial / (cells / W): the ceiling printed for the speed-up;
5. the cells alone in W such processes side by side, the notebooks dealt out in turn: what this
   machine's cores make of W workers that pay nothing but the cells. The lessons' cells share
   the cores with each other and with the engines they call, so this is the ceiling the machine
   really allows (serial / that time), below step 4's.

First it measures what two CPU-bound processes side by side gain on this machine over one
after the other: 2.00x on two free cores, less where virtual CPUs share a physical core or the
host is busy. Grading is not purely CPU-bound (kernels wait on engines and timeouts), so it can
beat that figure; it is context for the ratio, not a bound.

Run: `make bench` or `.venv/bin/python bench/grade_throughput.py [--per-lesson 4]`.
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compatlab.backends import ENGINES_VARIABLE, lab_engines, stop_lab_engines
from compatlab.grader.course import REPO, Course, source_notebook
from compatlab.grader.release import sample_class
from compatlab.grader.sandbox import CERTIFICATE_DIR
from compatlab.process import engine_env

SAMPLE = REPO / "data" / "sample-class" / "submitted"


def generate_class(folder: Path, per_lesson: int) -> list[tuple[str, str]]:
    """N students per lesson, cycling through that lesson's sample notebooks (blank excluded)."""
    by_lesson: dict[str, list[str]] = {}
    for student in sample_class(Course()):
        if student.name != "blank-release":
            by_lesson.setdefault(student.assignment, []).append(student.name)
    jobs = []
    for lesson, sources in sorted(by_lesson.items()):
        for i in range(per_lesson):
            student = f"student-{i:02d}"
            target = folder / student / lesson
            target.mkdir(parents=True)
            shutil.copy(SAMPLE / sources[i % len(sources)] / lesson / f"{lesson}.ipynb", target)
            jobs.append((lesson, student))
    return jobs


def serial_nbgrader(folder: Path, work: Path, jobs: list[tuple[str, str]],
                    workers: int) -> tuple[dict, dict, float, float]:
    """nbgrader's own way, one step and one student after another: generate_assignment per
    lesson, autograde per submission, generate_feedback per submission. ({"whole": seconds of
    the three, "autograde": of autograde alone}, scores, and the seconds of the graded cells
    alone: in one process, and in `workers` processes at once)."""
    from nbgrader.api import Gradebook

    course = Course()
    shutil.copytree(folder, work / "submitted")
    api = course.nbgrader_api(root=work, source_directory=course.solutions, release_directory=work / "release",
                              submitted_directory=work / "submitted", autograded_directory=work / "autograded",
                              feedback_directory=work / "feedback", db_url=f"sqlite:///{work / 'gradebook.db'}")
    engines = lab_engines()
    saved = dict(os.environ)
    os.environ[ENGINES_VARIABLE] = json.dumps(engines)
    os.environ.update(engine_env(engines["ollama"]))
    os.environ.pop("SSL_CERT_FILE", None)  # as compatlab's kernels (see the docstring)
    os.environ["SSL_CERT_DIR"] = CERTIFICATE_DIR
    try:
        start = time.perf_counter()
        for lesson in sorted({lesson for lesson, _ in jobs}):
            source_notebook(course, lesson)
            assert api.generate_assignment(lesson, force=True, create=True)["success"]
        autograde_start = time.perf_counter()
        for lesson, student in jobs:
            result = api.autograde(lesson, student, force=True, create=True)
            if not result["success"]:
                print(f"  serial nbgrader could not grade {student}/{lesson}", file=sys.stderr)
        autograde_end = time.perf_counter()
        for lesson, student in jobs:
            if not api.generate_feedback(lesson, student, force=True)["success"]:
                print(f"  serial nbgrader could not write feedback for {student}/{lesson}", file=sys.stderr)
        seconds = {"whole": time.perf_counter() - start, "autograde": autograde_end - autograde_start}
        graded = [work / "autograded" / student / lesson / f"{lesson}.ipynb" for lesson, student in jobs]
        cells = cells_alone([graded], work)
        side_by_side = cells_alone([graded[i::workers] for i in range(workers)], work)
    finally:
        stop_lab_engines()
        os.environ.clear()  # the engines are gone: compatlab grade must not be sent to them
        os.environ.update(saved)
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gradebook:
        scores = {(lesson, student): gradebook.find_submission(lesson, student).score for lesson, student in jobs}
    return seconds, scores, cells, side_by_side


def cells_alone(shares: list[list[Path]], work: Path) -> float:
    """Seconds for one --cells-only process per share of the notebooks, run at once: each
    imports first, says so, and starts its cells when all are ready; the slowest one's time."""
    processes = [subprocess.Popen([sys.executable, __file__, "--cells-only", *map(str, share)], cwd=work, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                 for share in shares]
    for process in processes:
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("a process running the graded notebooks' cells failed to start")
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    return max(float(process.communicate()[0].split()[-1]) for process in processes)


def cells_only(paths: list[str]) -> float:
    """Seconds to run these notebooks' code cells one after another in this process, after
    importing what they use; each notebook in a fresh namespace."""
    import contextlib
    import io

    import nbformat
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # as in a kernel: figures rendered
    os.environ["NBGRADER_EXECUTION"] = "autograde"  # as nbgrader's kernels: check() and live models stand aside
    from IPython.core.interactiveshell import InteractiveShell

    import compatlab.lessonkit  # noqa: F401 -- what a warm kernel has imported
    import matplotlib.pyplot  # noqa: F401
    import ollama  # noqa: F401
    import openai  # noqa: F401
    import pandas  # noqa: F401

    shell = InteractiveShell.instance()
    notebooks = [nbformat.read(path, as_version=4) for path in paths]
    print("ready", flush=True)
    sys.stdin.readline()  # the go: every process of the run has imported
    start = time.perf_counter()
    for notebook in notebooks:
        shell.reset(new_session=False)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for cell in notebook.cells:
                if cell.cell_type == "code":
                    shell.run_cell(cell.source, silent=True)
    return time.perf_counter() - start


def compatlab_grade(folder: Path, out: Path, workers: int, *extra: str) -> tuple[float, dict]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "compatlab", "grade", str(folder), "--out", str(out),
                    "--workers", str(workers), *extra], check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    seconds = time.perf_counter() - start
    with open(out / "grades.csv", newline="") as handle:
        scores = {(row["assignment"], row["student"]): float(row["score"]) if row["score"] else None
                  for row in csv.DictReader(handle)}
    return seconds, scores


SPIN = "s = 0\nfor i in range(15_000_000): s += i"  # pure CPU: no I/O, no memory traffic


def cpu_parallelism(workers: int) -> float:
    """Seconds for `workers` copies of SPIN one after another, over seconds side by side."""
    def run(copies: int) -> float:
        start = time.perf_counter()
        for process in [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(copies)]:
            process.wait()
        return time.perf_counter() - start

    return workers * run(1) / run(workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-lesson", type=int, default=4, help="students per lesson (default 4)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cells-only", nargs="+", metavar="NOTEBOOK", help=argparse.SUPPRESS)  # step 4's process
    args = parser.parse_args()
    if args.cells_only:
        print(f"{cells_only(args.cells_only):.3f}")
        return
    with tempfile.TemporaryDirectory(prefix="grade-bench-") as tmp:
        tmp = Path(tmp)
        jobs = generate_class(tmp / "class", args.per_lesson)
        print(f"{len(jobs)} notebooks ({args.per_lesson} per lesson, {len({j[0] for j in jobs})} lessons), "
              f"{os.cpu_count()} CPUs")
        print(f"pure CPU here: {args.workers} processes side by side do {cpu_parallelism(args.workers):.2f}x "
              f"the work of one")
        serial, serial_scores, cells, side_by_side = serial_nbgrader(tmp / "class", tmp / "serial", jobs, args.workers)
        runs = {"as shipped": compatlab_grade(tmp / "class", tmp / "parallel", args.workers),
                "--run-demos": compatlab_grade(tmp / "class", tmp / "with-demos", args.workers, "--run-demos")}
    whole, autograde = serial["whole"], serial["autograde"]
    label = f"compatlab grade --workers {args.workers}"
    print(f"{'':58} {'seconds':>8} {'s/notebook':>11}")
    for name, value in (("serial nbgrader: generate, autograde, feedback", whole),
                        ("serial nbgrader: autograde alone", autograde),
                        (f"{label} (whole run)", runs["as shipped"][0]),
                        (f"{label} --run-demos (whole run)", runs["--run-demos"][0]),
                        ("the cells alone, one process (demonstrations included)", cells),
                        (f"the cells alone, {args.workers} processes at once", side_by_side)):
        print(f"{name:58} {value:8.1f} {value / len(jobs):11.2f}")
    for name, (parallel, parallel_scores) in runs.items():
        same = serial_scores == parallel_scores
        print(f"speed-up, {name}: whole job against whole job {whole / parallel:.2f}x; against serial autograde "
              f"alone {autograde / parallel:.2f}x; scores identical: {'yes' if same else 'NO'}")
        for key in sorted(serial_scores):
            if serial_scores[key] != parallel_scores.get(key):
                print(f"  {key}: serial {serial_scores[key]} vs compatlab {parallel_scores.get(key)}")
    print(f"ceiling for every cell (serial autograde alone over the cells): with {args.workers} workers and no cost "
          f"but the cells, {autograde / (cells / args.workers):.2f}x if they shared nothing; "
          f"{autograde / side_by_side:.2f}x as this machine runs them side by side")


if __name__ == "__main__":
    main()
