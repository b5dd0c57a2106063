"""`compatlab lab` (`make lab`): JupyterLab on the learner's work folder, with an engine running
for its kernels and the learner's tools only (learner_config/)."""

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx

from compatlab import llama, workfolder
from compatlab.backends import REAL_HOST_VARIABLE, ollama_host, probe
from compatlab.process import EngineProcess, EngineStartError, die_with_parent, engine_env

REPO = Path(__file__).resolve().parents[2]
LESSONS = REPO / "lessons"
WORK = REPO / "work"
# Read by this Jupyter only (JUPYTER_CONFIG_PATH): labconfig/page_config.json disables nbgrader's
# instructor extensions (Create Assignment, Formgrader, Course List) and the "Jupyter news"
# announcements; jupyter_server_config.json turns off the formgrader and course list server
# extensions. Assignment List and Validate stay.
LEARNER_CONFIG = Path(__file__).resolve().parent / "learner_config"


def _stop_on_sigterm(*_: object) -> None:
    raise SystemExit(143)  # unwinds through the finally below, so the engine is stopped too


def _start_real_tier(env: dict) -> EngineProcess | None:
    """With the real tier installed (`make real`), SmolLM2 on llama-server joins the lessons:
    llama-server itself at LLAMA_SERVER_URL (a row of the compat matrix) and the Ollama-API
    front over it at COMPATLAB_LLAMA_HOST. Without it, lessons run on the lab engine alone."""
    if not llama.installed():
        print(f"Real tier not installed (optional): {llama.INSTALL_HINT}")
        return None
    try:
        front = EngineProcess("--backend", "llama").start(timeout=120)
    except EngineStartError as exc:
        print(f"The real tier did not start: {exc}")
        return None
    env[REAL_HOST_VARIABLE] = front.url
    env["LLAMA_SERVER_URL"] = httpx.get(front.url + "/lab/status", timeout=5).json()["llama_server"]
    print(f"Real tier: {llama.MODEL_NAME} on llama-server at LLAMA_SERVER_URL={env['LLAMA_SERVER_URL']}, "
          f"Ollama's API over it at {REAL_HOST_VARIABLE}={front.url}", flush=True)
    return front


def prepare_work(work: Path, lessons: Path = LESSONS, today: date | None = None) -> None:
    """Fill the work folder from the release and say what changed."""
    changes = workfolder.sync(lessons, work, today)
    copied = [change for change in changes if change.kind == "copied"]
    if copied:
        print(f"Copied {len(copied)} notebook(s) from the release into your work folder {work}")
    for change in changes:
        if change.kind != "copied":
            print(change)
    print(f"Your work folder: {work} (the release in {lessons} is never opened or changed)", flush=True)


def run_lab(port: int | None, engine_port: int, work: Path, extra: list[str]) -> int:
    rooted = any(arg.startswith(("--notebook-dir", "--ServerApp.root_dir")) for arg in extra)
    if not rooted:
        prepare_work(work)
    found = probe(ollama_host())
    engine = None
    if found.answers:
        url = found.url
        print(f"Using the engine at OLLAMA_HOST: {url}" + (" (a lab engine)" if found.lab_engine else ""))
    else:
        try:
            engine = EngineProcess(port=engine_port).start()
        except EngineStartError:  # the port is taken: any free one will do
            engine = EngineProcess(port=0).start()
        url = engine.url
        print(f"No Ollama at {found.url}; started the lab engine at {url}")
    env = {**os.environ, **engine_env(url)}
    print(f"Kernels get OLLAMA_HOST={env['OLLAMA_HOST']} OPENAI_BASE_URL={env['OPENAI_BASE_URL']}", flush=True)
    real = _start_real_tier(env)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(filter(None, [str(LEARNER_CONFIG), env.get("JUPYTER_CONFIG_PATH")]))
    command = [sys.executable, "-m", "jupyter", "lab", *([] if rooted else [f"--notebook-dir={work}"]),
               *([] if port is None else [f"--ServerApp.port={port}"]), *extra]
    if os.geteuid() == 0 and "--allow-root" not in extra:
        command.append("--allow-root")  # containers and CI run as root; Jupyter refuses without it
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    jupyter = subprocess.Popen(command, env=env, preexec_fn=die_with_parent)
    try:
        return jupyter.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if jupyter.poll() is None:
            jupyter.terminate()
            jupyter.wait(10)
        for started in (engine, real):
            if started is not None:
                started.stop()
