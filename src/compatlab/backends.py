"""Finding an engine: a real Ollama at OLLAMA_HOST wins when it answers; else the lab engine."""

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from compatlab import DEFAULT_OLLAMA_HOST


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
