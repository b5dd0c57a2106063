"""The `compatlab` command line."""

import argparse
import os
import sys

from compatlab import DEFAULT_ENGINE_PORT, __version__


def _serve(args: argparse.Namespace) -> int:
    from compatlab.engine.faults import FAULTS
    from compatlab.engine.server import serve

    if args.backend == "llama":
        from compatlab.engine.llama_front import serve_front

        return serve_front(args.host, args.port, args.llama_port)
    if args.fault is not None and args.fault not in FAULTS:
        print(f"error: unknown fault {args.fault!r}; choose one of {', '.join(FAULTS)}", file=sys.stderr)
        return 2
    return serve(_engine_settings(args), host=args.host, port=args.port)


def _engine_settings(args: argparse.Namespace):
    from compatlab.engine.settings import EngineSettings

    return EngineSettings(profile=args.profile, tokens_per_second=args.tokens_per_second, ttft_ms=args.ttft_ms,
                          load_ms=args.load_ms, slow_load_ms=args.slow_load_ms, seed=args.seed, fault=args.fault)


def _serve_group(args: argparse.Namespace) -> int:
    """Each engine's arguments are read as `engine serve` reads its own (lab backend only)."""
    import json

    from compatlab.engine.faults import FAULTS
    from compatlab.engine.server import serve_group

    parser = build_parser()
    try:
        engines = {str(name): parser.parse_args(["engine", "serve", *map(str, arguments)])
                   for name, arguments in json.loads(args.engines).items()}
    except (ValueError, AttributeError, TypeError):
        print('error: ENGINES must be a JSON object: {"name": ["--profile", "vllm", ...], ...}', file=sys.stderr)
        return 2
    wrong = [name for name, one in engines.items()
             if one.backend != "lab" or (one.fault is not None and one.fault not in FAULTS) or " " in name]
    if wrong:
        print(f"error: {', '.join(wrong)}: a lab engine (no --backend llama) with a known fault, named without spaces",
              file=sys.stderr)
        return 2
    return serve_group({name: _engine_settings(one) for name, one in engines.items()}, args.host)


def _doctor(args: argparse.Namespace) -> int:
    from compatlab.doctor import run_doctor

    return run_doctor(backend=args.backend)


def _demo(args: argparse.Namespace) -> int:
    from compatlab.demo import run_demo

    return run_demo()


def _tour(args: argparse.Namespace) -> int:
    from compatlab.tour import run_tour

    return run_tour()


def _grade(args: argparse.Namespace) -> int:
    from compatlab.grader.grade import run_grade

    return run_grade(args.submissions, args.out, args.workers, not args.no_sandbox, args.cell_timeout,
                     args.notebook_timeout, args.assignment, args.student, args.due, args.cluster or "",
                     args.run_demos)


def _check(args: argparse.Namespace) -> int:
    import gc

    from compatlab.grader.check import run_check

    code = run_check(args.notebooks, lesson=args.lesson, as_json=args.json, sandboxed=not args.no_sandbox,
                     exercise=args.exercise)
    gc.freeze()  # the process ends now: its teardown need not collect all it imported (half a second)
    return code


def _check_service(args: argparse.Namespace) -> int:
    from compatlab.grader.check_service import run_check_service

    return run_check_service(args.host, args.port, args.parallel, args.no_hub, args.socket)


def _release(args: argparse.Namespace) -> int:
    from compatlab.grader.release import run_release

    return run_release(check=args.check)


def _record(args: argparse.Namespace) -> int:
    from pathlib import Path

    from compatlab.traces import TRACES, run_record

    return run_record(Path(args.out) if args.out else TRACES)


def _lab(args: argparse.Namespace) -> int:
    from pathlib import Path

    from compatlab.lab import WORK, run_lab

    return run_lab(port=args.port, engine_port=args.engine_port, work=Path(args.work).resolve() if args.work else WORK,
                   extra=args.jupyter_args)


def _classroom(args: argparse.Namespace) -> int:
    from compatlab.classroom import commands
    from compatlab.classroom.accounts import read_learners

    if args.classroom_command == "up":
        return commands.run_up(args.instructor, read_learners(args.learners), args.port)
    return commands.run_down(remove=args.remove, yes=args.yes)


def build_parser() -> argparse.ArgumentParser:
    from compatlab.engine.faults import FAULTS
    from compatlab.engine.profiles import PROFILES

    parser = argparse.ArgumentParser(prog="compatlab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"compatlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    engine = commands.add_parser("engine", help="the embedded lab engine")
    engine_commands = engine.add_subparsers(dest="engine_command", required=True)
    serve = engine_commands.add_parser("serve", help="serve Ollama's API and /v1 from the lab engine")
    serve.add_argument("--backend", choices=["lab", "llama"], default="lab",
                       help="lab: the deterministic lab engine; llama: SmolLM2 on llama-server (`make real`)")
    serve.add_argument("--llama-port", type=int, default=0,
                       help="--backend llama: llama-server's own loopback port (0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_ENGINE_PORT, help="0 picks a free port")
    serve.add_argument("--profile", default="ollama", choices=sorted(PROFILES),
                       help="which real engine's wire differences to reproduce")
    serve.add_argument("--tokens-per-second", type=float, default=60.0, help="0: as fast as possible")
    serve.add_argument("--ttft-ms", type=float, default=80.0, help="prompt evaluation time")
    serve.add_argument("--load-ms", type=float, default=400.0, help="model load time on first use")
    serve.add_argument("--slow-load-ms", type=float, default=10_000.0, help="load time of lab:slow-load")
    serve.add_argument("--seed", type=int, default=0, help="seed for requests that give none")
    serve.add_argument("--fault", default=None, metavar="KIND", help=f"apply to every model: {', '.join(FAULTS)}")
    serve.set_defaults(func=_serve)
    group = engine_commands.add_parser("group", help="several lab engines from one process, one port each")
    group.add_argument("--host", default="127.0.0.1")
    group.add_argument("engines", metavar="ENGINES",
                       help='JSON: {"name": [`engine serve` arguments], ...}; prints one ready line per engine')
    group.set_defaults(func=_serve_group)

    doctor = commands.add_parser("doctor", help="which engines answer, and whether the kit can use one")
    doctor.add_argument("--backend", choices=["auto", "ollama", "lab"], default="auto",
                        help="auto: a real Ollama at OLLAMA_HOST if it answers, else the lab engine")
    doctor.set_defaults(func=_doctor)

    demo = commands.add_parser("demo", help="the main job: grade the sample class on the lab engine")
    demo.set_defaults(func=_demo)

    tour = commands.add_parser("tour", help="one conversation of each kind through the official clients")
    tour.set_defaults(func=_tour)

    grade = commands.add_parser("grade", help="autograde a class with nbgrader and write a report")
    grade.add_argument("submissions", metavar="SUBMISSIONS_DIR", help="<student>/<assignment>/<notebook>.ipynb")
    grade.add_argument("--out", required=True, metavar="DIR", help="grades.csv, feedback/ and report.html go here")
    grade.add_argument("--workers", type=int, default=None, metavar="N",
                       help="students graded at once (default: one more than the CPUs)")
    grade.add_argument("--cell-timeout", type=int, default=30, metavar="SECONDS",
                       help="time limit per notebook cell (default: 30)")
    grade.add_argument("--notebook-timeout", type=int, default=600, metavar="SECONDS",
                       help="time limit for a whole notebook (default: 600)")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run student code with the grader's rights (see README, 'Grading safely')")
    grade.add_argument("--run-demos", action="store_true",
                       help="run the lessons' demonstrations too, for their tables and plots in the autograded "
                            "notebooks (nbgrader's formgrader); by default the grader leaves them out: they grade nothing")
    grade.add_argument("--assignment", action="append", metavar="LESSON",
                       help="grade only this lesson's submissions (repeat for more); the rest keep their grades")
    grade.add_argument("--student", action="append", metavar="ID",
                       help="grade only this student's submissions (repeat for more); the rest keep their grades")
    grade.add_argument("--due", action="append", metavar="LESSON=WHEN",
                       help="the lesson's due date, e.g. first-contact='2026-12-10 17:00 UTC' (kept in the gradebook); "
                            "a submission whose timestamp.txt is later is late")
    grade.add_argument("--cluster", default=os.environ.get("COMPATLAB_CLUSTER") or None, metavar="ADDRESS",
                       help="run student code on this Dask cluster's workers, e.g. tcp://10.0.0.5:8786 (default: "
                            "$COMPATLAB_CLUSTER); --workers then defaults to the cluster's threads (README, "
                            "'Courses bigger than one machine')")
    grade.set_defaults(func=_grade)

    check = commands.add_parser("check", help="grade your own notebook as `compatlab grade` would, hidden tests included")
    check.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help="e.g. work/tolerant-client/tolerant-client.ipynb")
    check.add_argument("--lesson", default=None, help="which lesson it is (default: from the file or folder name)")
    check.add_argument("--exercise", default=None, metavar="NAME", help="show only this exercise's tests, e.g. read_usage")
    check.add_argument("--json", action="store_true", help="print the verdicts as JSON (what check() in a notebook reads)")
    check.add_argument("--no-sandbox", action="store_true", help="run the notebook with your own rights (no bubblewrap)")
    check.set_defaults(func=_check)

    service = commands.add_parser("check-service", help="`compatlab check` over HTTP for a classroom's learners "
                                                         "(a JupyterHub service; README, 'Running a classroom')")
    service.add_argument("--host", default="127.0.0.1")
    service.add_argument("--port", type=int, default=8009)
    service.add_argument("--socket", metavar="PATH", default=None,
                         help="listen on this Unix socket instead (a classroom: its folder must be only this user's)")
    service.add_argument("--parallel", type=int, default=2, metavar="N", help="checks run at once (default: 2)")
    service.add_argument("--no-hub", action="store_true", help="no JupyterHub to ask who calls: one learner's machine")
    service.set_defaults(func=_check_service)

    release = commands.add_parser("release", help="regenerate lessons/ and the sample class from solutions/")
    release.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    release.set_defaults(func=_release)

    record = commands.add_parser("record", help="record real streams from llama-server and the front (make real)")
    record.add_argument("--out", metavar="DIR", help="where the traces go (default: data/traces)")
    record.set_defaults(func=_record)

    lab = commands.add_parser("lab", help="JupyterLab on your work folder (filled from lessons/), with an engine running",
                              description="JupyterLab for learners on the work folder, which it fills from lessons/ "
                                          "on first use and never overwrites; any other arguments (e.g. --no-browser) "
                                          "go to `jupyter lab` unchanged.")
    lab.add_argument("--port", type=int, default=None, metavar="N", help="JupyterLab's port (default: Jupyter's own, 8888)")
    lab.add_argument("--engine-port", type=int, default=DEFAULT_ENGINE_PORT, metavar="N",
                     help=f"the lab engine's port, if one is started (default: {DEFAULT_ENGINE_PORT}; 0 picks a free one)")
    lab.add_argument("--work", metavar="DIR", default=None, help="your work folder (default: work/ in the kit)")
    lab.set_defaults(func=_lab)

    classroom = commands.add_parser("classroom", help="a classroom on JupyterHub on this machine (as root)")
    classroom_commands = classroom.add_subparsers(dest="classroom_command", required=True)
    up = classroom_commands.add_parser("up", help="install the kit for every user, make the accounts, start the hub")
    up.add_argument("--learners", default="", metavar="NAMES", help="alice,bob or @FILE (one name a line)")
    up.add_argument("--instructor", default="instructor", metavar="NAME")
    up.add_argument("--port", type=int, default=8000, help="the hub's port on 127.0.0.1 (default: 8000)")
    down = classroom_commands.add_parser("down", help="stop the hub; --remove also deletes what `up` made")
    down.add_argument("--remove", action="store_true", help="delete the accounts, /opt/compatlab and the exchange")
    down.add_argument("--yes", action="store_true", help="with --remove: do not ask")
    classroom.set_defaults(func=_classroom)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.jupyter_args = rest
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
