"""`compatlab doctor`: which engines answer, one round trip each, and whether the kit can work."""

import time

import httpx
from rich.console import Console
from rich.table import Table

from compatlab.backends import Probe, ollama_host, probe
from compatlab.process import EngineProcess, EngineStartError


def _round_trip(url: str, model: str, timeout: float = 120.0) -> tuple[bool, str]:
    """One short chat through the native API."""
    start = time.perf_counter()
    try:
        response = httpx.post(f"{url}/api/chat", timeout=timeout, json={
            "model": model, "stream": False, "options": {"num_predict": 8},
            "messages": [{"role": "user", "content": "Say hello."}]})
        response.raise_for_status()
        tokens = response.json().get("eval_count", 0)
    except (httpx.HTTPError, ValueError) as exc:
        return False, f"chat with {model} failed: {exc}"
    return True, f"chat with {model}: {tokens} tokens in {(time.perf_counter() - start) * 1000:.0f} ms"


def _real_tier_row(table: Table) -> None:
    """llama-server with SmolLM2, if the real tier is installed: started, asked once, stopped."""
    from compatlab import llama

    try:
        server = llama.LlamaServer()
    except llama.RealTierMissing as exc:
        table.add_row("llama-server (real tier)", "", "no", "", "", str(exc))
        return
    try:
        with server:
            start = time.perf_counter()
            reply = httpx.post(f"{server.url}/v1/chat/completions", timeout=60, json={
                "model": llama.MODEL_NAME, "max_tokens": 8, "messages": [{"role": "user", "content": "Say hello."}]})
            reply.raise_for_status()
            tokens = reply.json()["usage"]["completion_tokens"]
            version = httpx.get(f"{server.url}/props", timeout=5).json().get("build_info", "")
            table.add_row("llama-server (real tier)", server.url, "yes", version, llama.MODEL_NAME,
                          f"chat: {tokens} tokens in {(time.perf_counter() - start) * 1000:.0f} ms")
    except (RuntimeError, httpx.HTTPError, ValueError, KeyError) as exc:
        table.add_row("llama-server (real tier)", server.url, "no", "", "", f"{type(exc).__name__}: {exc}"[:200])


def _chat_model(found: Probe) -> str | None:
    if "lab:latest" in found.models:
        return "lab:latest"
    return next((name for name in found.models if "embed" not in name), None)


def run_doctor(backend: str = "auto", console: Console | None = None) -> int:
    console = console or Console(width=None if Console().is_terminal else 160)  # piped: wide enough that no cell wraps
    table = Table(title="compatlab doctor")
    for column in ("backend", "address", "answers", "version", "models", "round trip"):
        table.add_column(column)

    real = probe(ollama_host())
    real_usable = False
    if real.answers and not real.lab_engine:
        model = _chat_model(real)
        ok, detail = _round_trip(real.url, model) if model else (False, "no chat model pulled")
        real_usable = ok
        table.add_row("Ollama (OLLAMA_HOST)", real.url, "yes", real.version, str(len(real.models)), detail)
    elif real.lab_engine:
        table.add_row("OLLAMA_HOST", real.url, "yes", real.version, str(len(real.models)),
                      f"this is a compatlab lab engine (profile {real.profile}), not a real Ollama")
    else:
        table.add_row("Ollama (OLLAMA_HOST)", real.url, "no", "", "", real.error or "no answer")

    lab_usable, lab_problem = False, ""
    if backend != "ollama":
        try:
            with EngineProcess() as engine:
                found = probe(engine.url)
                lab_usable, detail = _round_trip(engine.url, "lab:latest")
                table.add_row("lab engine (embedded)", engine.url, "yes", f"{found.version} (compatlab)",
                              str(len(found.models)), detail)
        except EngineStartError as exc:
            lab_problem = str(exc)
            table.add_row("lab engine (embedded)", "", "no", "", "", "did not start")
    _real_tier_row(table)  # optional: never decides the exit code
    console.print(table)

    if backend == "ollama" and not real_usable:
        console.print(f"[red]The configured backend, Ollama at {real.url}, is not usable.[/red] Fix: start it "
                      "(`ollama serve`), pull a chat model (`ollama pull llama3.2`), or set OLLAMA_HOST to "
                      "where it runs. Or use the embedded engine: `compatlab doctor --backend lab`.")
        return 1
    if backend == "lab" and not lab_usable or backend == "auto" and not (real_usable or lab_usable):
        console.print("[red]The embedded lab engine is not usable.[/red] Fix: reinstall the kit "
                      f"(`make clean install`) and check the error below.\n{lab_problem}")
        return 1
    chosen = "Ollama at " + real.url if backend != "lab" and real_usable else "the embedded lab engine"
    console.print(f"[green]OK[/green]: notebooks will use {chosen}.")
    return 0
