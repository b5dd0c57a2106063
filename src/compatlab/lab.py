"""`compatlab lab` (`make lab`): JupyterLab on lessons/ with an engine running for its kernels."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from compatlab.backends import ollama_host, probe
from compatlab.process import EngineProcess, EngineStartError, die_with_parent, engine_env

LESSONS = Path(__file__).resolve().parents[2] / "lessons"


def _stop_on_sigterm(*_: object) -> None:
    raise SystemExit(143)  # unwinds through the finally below, so the engine is stopped too


def run_lab(port: int, extra: list[str]) -> int:
    real = probe(ollama_host())
    engine = None
    if real.answers:
        url = real.url
        print(f"Using the engine at OLLAMA_HOST: {url}" + (" (a lab engine)" if real.lab_engine else ""))
    else:
        try:
            engine = EngineProcess(port=port).start()
        except EngineStartError:  # the port is taken: any free one will do
            engine = EngineProcess(port=0).start()
        url = engine.url
        print(f"No Ollama at {real.url}; started the lab engine at {url}")
    env = {**os.environ, **engine_env(url)}
    print(f"Kernels get OLLAMA_HOST={env['OLLAMA_HOST']} OPENAI_BASE_URL={env['OPENAI_BASE_URL']}", flush=True)
    command = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={LESSONS}", *extra]
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
        if engine is not None:
            engine.stop()
