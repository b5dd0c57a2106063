"""Finding an engine: a real Ollama at OLLAMA_HOST wins when it answers; else the lab engine."""

import atexit
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from compatlab import DEFAULT_OLLAMA_HOST

if TYPE_CHECKING:
    from compatlab.process import EngineGroup


def ollama_host() -> str:
    """OLLAMA_HOST as a full URL, read the way Ollama's clients read it (scheme and port optional)."""
    raw = os.environ.get("OLLAMA_HOST", "").strip() or DEFAULT_OLLAMA_HOST
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    host = parts.hostname or "127.0.0.1"
    if host == "0.0.0.0":  # a bind address, not somewhere to connect to
        host = "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 11434)
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/')}"


@dataclass
class Probe:
    """What one address answered."""

    url: str
    answers: bool = False
    version: str = ""
    lab_engine: bool = False  # a compatlab lab engine, not a real Ollama
    profile: str = ""
    models: list[str] = field(default_factory=list)
    error: str = ""


def probe(url: str, timeout: float = 2.0) -> Probe:
    """Ask /api/version, /api/tags and /lab/status; never raises."""
    result = Probe(url)
    try:
        with httpx.Client(base_url=url, timeout=timeout) as client:
            version = client.get("/api/version")
            version.raise_for_status()
            result.answers, result.version = True, version.json().get("version", "")
            result.models = [m["name"] for m in client.get("/api/tags").json().get("models", [])]
            status = client.get("/lab/status")
            if status.status_code == 200 and status.json().get("engine") == "compatlab":
                result.lab_engine, result.profile = True, status.json().get("profile", "")
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except ValueError as exc:
        result.error = f"not an Ollama API: {exc}"
    return result


# ---------------------------------------------------------------- engines for lessons

# `compatlab grade` (and anyone sharing engines with a class) sets this to a JSON object
# {engine name: root URL}; lessons use those engines instead of starting their own.
ENGINES_VARIABLE = "COMPATLAB_ENGINES"
# `make lab` sets this (and LLAMA_SERVER_URL) when the real tier is installed: the Ollama-API
# front over llama-server with SmolLM2, for lessons that want real decoding.
REAL_HOST_VARIABLE = "COMPATLAB_LLAMA_HOST"
LESSON_PROFILES = ("ollama", "ollama-legacy", "llamacpp", "vllm")
# What lessons can ask for: each profile unpaced (answers in microseconds), and "paced", an
# `ollama` profile that streams like a small model on a laptop (60 tokens/s, 80 ms to the first
# token) for timing plots and disconnect tests. Model loads take no time in any of them.
# `compatlab grade` shares the unpaced ones; each sandbox has a paced engine of its own (its
# runner starts it, sandbox.paced_engine) and a kernel outside one starts its own, so one
# student's timings and open streams never mix with another's.
LESSON_ENGINES = {**{profile: ("--profile", profile) for profile in LESSON_PROFILES},
                  "paced": ("--profile", "ollama", "--load-ms", "0")}
_started: dict[str, str] = {}  # the root URL of each engine this process started, by name
_groups: list["EngineGroup"] = []


def lab_engines(names: tuple[str, ...] = LESSON_PROFILES, prefix: tuple[str, ...] = ()) -> dict[str, str]:
    """A lab engine's root URL per name (see LESSON_ENGINES): the shared ones named in
    COMPATLAB_ENGINES, the rest started now and stopped when this process exits: one process,
    which imports the engine once and forks one child per engine (process.EngineGroup), run
    through `prefix` (`compatlab grade`: a sandbox of their own)."""
    from compatlab.process import FAST, EngineGroup

    unknown = [name for name in names if name not in LESSON_ENGINES]
    if unknown:
        raise ValueError(f"no lab engine called {', '.join(unknown)}; choose from {', '.join(LESSON_ENGINES)}")
    shared = json.loads(os.environ.get(ENGINES_VARIABLE) or "{}")
    missing = [name for name in names if name not in shared and name not in _started]
    if missing:
        group = EngineGroup({name: [*LESSON_ENGINES[name], *(FAST if name != "paced" else ())] for name in missing},
                            prefix=prefix)
        _groups.append(group.launch())
        _started.update(group.wait_ready().urls)
    return {name: shared.get(name) or _started[name] for name in names}


@atexit.register
def stop_lab_engines() -> None:
    """Every engine this process started: all told to stop at once, then each waited for."""
    groups = list(_groups)
    _groups.clear()
    _started.clear()
    for group in groups:
        if group.process is not None and group.process.poll() is None:
            group.process.terminate()
    for group in groups:
        group.stop()


def real_engines() -> dict[str, tuple[str, str]]:
    """Real engines that answer here: {label: (/v1 base URL, a chat model)}. Empty while
    nbgrader grades, so grades never depend on what happens to run on the grading machine."""
    if os.environ.get("NBGRADER_EXECUTION"):
        return {}
    found = {}
    ollama = probe(ollama_host())
    chat_models = [m for m in ollama.models if "embed" not in m]
    if ollama.answers and not ollama.lab_engine and chat_models:
        found[f"Ollama {ollama.version} (real)"] = (ollama.url + "/v1", chat_models[0])
    llama_server = os.environ.get("LLAMA_SERVER_URL", "").rstrip("/")  # e.g. http://127.0.0.1:8080
    if llama_server:
        try:
            models = httpx.get(llama_server + "/v1/models", timeout=2.0).json()["data"]
            found["llama-server (real)"] = (llama_server + "/v1", models[0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            pass  # not answering: no row
    return found
