"""Grading on a Dask cluster: throughput with 1 and 2 workers here, and what N machines would do.

A benchmark, not a test: it prints figures and asserts nothing. One run, on this machine, on
loopback (so the coordinator and the workers share its cores, which makes every figure here a
pessimistic one for real machines):

1. a generated class: N students per lesson, each handing in one of that lesson's sample-class
   notebooks in turn (bench/grade_throughput.py's generate_class);
2. for W = 1 and 2: a `dask scheduler` and W `dask worker --nthreads 1 --no-nanny` processes,
   then `compatlab grade CLASS --out … --cluster ADDRESS` as a subprocess, timed from start to
   exit (the workers' set-up included: their engines and templates start on the first run),
   then the same command into a fresh --out once more (the workers set up already, as in a
   course's second grading run); the scores must be the same in every run;
3. from the runs: each notebook's time on a worker's slot (the task's own seconds, from
   grading.log), and the coordinator's CPU-seconds per notebook (the grade process and its
   grading processes: nbgrader's steps, the gradebook, reading results, feedback, report);
4. the projection: how many worker slots one coordinator core can feed (slot seconds per
   notebook / coordinator CPU-seconds per notebook), and the time for a class of 600 notebooks
   on M machines of S slots.

Run: `.venv/bin/python bench/grade_cluster.py [--per-lesson 2]`.
"""

import argparse
import csv
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from grade_throughput import generate_class  # noqa: E402

from compatlab.grader.course import REPO  # noqa: E402

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_cluster(folder: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    from distributed import Client

    address = f"tcp://127.0.0.1:{free_port()}"
    log = open(folder / "cluster.log", "ab")
    processes = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                                   address.rsplit(":", 1)[1], "--no-dashboard"], stdout=log, stderr=log,
                                  start_new_session=True)]
    for i in range(workers):
        (folder / f"worker-{i}").mkdir()
        processes.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                                           "--no-dashboard", "--local-directory", str(folder / f"worker-{i}")],
                                          stdout=log, stderr=log, start_new_session=True))
    with Client(address, timeout="30s") as client:
        client.wait_for_workers(workers, timeout=60)
    return address, processes


def stop_cluster(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def grade(folder: Path, out: Path, extra: list[str]) -> tuple[float, float, dict, list[float]]:
    """(wall seconds, coordinator CPU-seconds, scores, each task's seconds on its worker)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "compatlab", "grade", str(folder), "--out", str(out), *extra],
                          capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"compatlab grade failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(out / "grades.csv", newline="") as handle:
        scores = {(r["student"], r["assignment"]): r["score"] for r in csv.DictReader(handle)}
    log = (out / "nbgrader" / "grading.log").read_text(errors="replace")
    tasks = [float(m) for m in re.findall(r"\[compatlab grader: ran on \S+ in ([0-9.]+) s\]", log)]
    return wall, cpu, scores, tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-lesson", type=int, default=2, help="students per lesson (default 2: 12 notebooks)")
    parser.add_argument("--class-size", type=int, default=600, help="notebooks in the projected class")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="compatlab-bench-cluster-"))
    try:
        jobs = generate_class(base / "class", args.per_lesson)
        n = len(jobs)
        print(f"{n} notebooks ({args.per_lesson} per lesson), {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        runs, all_scores, slot_times, cpus = [], [], [], []
        for workers in (1, 2):
            folder = base / f"cluster-{workers}"
            folder.mkdir()
            address, processes = start_cluster(folder, workers)
            try:
                for label in ("first run (workers set up)", "second run (set up already)"):
                    wall, cpu, scores, tasks = grade(base / "class", folder / f"out-{len(runs)}", ["--cluster", address])
                    runs.append((workers, label, wall, cpu, tasks))
                    all_scores.append(scores)
                    slot_times += tasks
                    cpus.append(cpu / n)
                    print(f"{workers} worker{'s' * (workers > 1)}, {label}: {wall:.1f} s ({wall / n:.2f} s/notebook), "
                          f"coordinator {cpu:.1f} CPU-s ({cpu / n:.2f}/notebook), tasks on workers median "
                          f"{statistics.median(tasks):.2f} s", flush=True)
            finally:
                stop_cluster(processes)
        identical = all(scores == all_scores[0] for scores in all_scores)
        print(f"scores identical in all {len(all_scores)} runs: {identical}")
        slot = statistics.median(slot_times)
        coordinator = statistics.median(cpus)
        feeds = slot / coordinator
        one, two = [r[2] for r in runs if r[1].startswith("second")]
        print(f"\nspeed-up from 1 to 2 workers (second runs): {one / two:.2f}x (both on this machine's {os.cpu_count()} cores,"
              " beside the coordinator)")
        print(f"a notebook on a worker's slot: median {slot:.2f} s; the coordinator's cost per notebook: median "
              f"{coordinator:.2f} CPU-s")
        print(f"one coordinator core feeds about {feeds:.0f} busy worker slots ({slot:.2f} / {coordinator:.2f})")
        print(f"\nprojection, {args.class_size} notebooks (slots run {slot:.2f} s per notebook; the coordinator takes "
              f"{coordinator:.2f} CPU-s per notebook on the cores it has):")
        for machines, slots in ((1, 2), (4, 2), (10, 4), (25, 8), (50, 8)):
            workers_time = args.class_size * slot / (machines * slots)
            floor = {cores: args.class_size * coordinator / cores for cores in (2, 8)}
            print(f"  {machines:>3} machines x {slots} slots: {workers_time / 60:6.1f} min of worker time; the coordinator "
                  f"needs {floor[2] / 60:.1f} min on 2 cores, {floor[8] / 60:.1f} min on 8 -> "
                  f"{max(workers_time, floor[2]) / 60:.1f} / {max(workers_time, floor[8]) / 60:.1f} min")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
