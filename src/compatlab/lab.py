"""`compatlab lab` (`make lab`): JupyterLab on lessons/ with an engine running for its kernels."""

import os
import subprocess
import sys
from pathlib import Path

from compatlab.backends import ollama_host, probe
from compatlab.process import EngineProcess, engine_env

LESSONS = Path(__file__).resolve().parents[2] / "lessons"


def run_lab(port: int, extra: list[str]) -> int:
    real = probe(ollama_host())
    engine = None
    if real.answers:
        url = real.url
        print(f"Using the engine at OLLAMA_HOST: {url}" + (" (a lab engine)" if real.lab_engine else ""))
    else:
        engine = EngineProcess(port=port)
        try:
            engine.start()
        except Exception:  # the port is taken: take any free one instead
            engine = EngineProcess(port=0).start()
        url = engine.url
        print(f"No Ollama at {real.url}; started the lab engine at {url}")
    env = {**os.environ, **engine_env(url)}
    print(f"Kernels get OLLAMA_HOST={env['OLLAMA_HOST']} OPENAI_BASE_URL={env['OPENAI_BASE_URL']}")
    command = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={LESSONS}", *extra]
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if engine is not None:
            engine.stop()
