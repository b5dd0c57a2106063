"""`compatlab tour` (`make tour`): one conversation of each kind through the official clients.

Starts the embedded lab engine, drives it with the `ollama` and `openai` packages exactly as a
learner's code would, prints what each exchange showed, and stops the engine.
"""

import base64
import json
import struct
import time
from collections.abc import Callable
from importlib.metadata import version

import jsonschema
import ollama
import openai
from rich.console import Console
from rich.table import Table

from compatlab.process import EngineProcess

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
RECIPE = {"type": "object", "properties": {
    "title": {"type": "string"}, "servings": {"type": "integer", "minimum": 1},
    "diet": {"enum": ["vegan", "vegetarian", "omnivore"]},
    "steps": {"type": "array", "items": {"type": "string"}, "minItems": 2}},
    "required": ["title", "servings", "diet", "steps"]}


def _native_stream(client: ollama.Client, api: openai.OpenAI) -> str:
    start = time.perf_counter()
    first = None
    parts = []
    for part in client.chat("lab", messages=[{"role": "user", "content": "Explain streaming in 30 words"}], stream=True):
        if part.message.content and first is None:
            first = time.perf_counter() - start
        parts.append(part)
    done = parts[-1]
    rate = done.eval_count / done.eval_duration * 1e9
    return (f"{len(parts) - 1} NDJSON chunks + done frame; TTFT {first * 1000:.0f} ms; "
            f"engine says {rate:.0f} tokens/s")


def _openai_stream(client: ollama.Client, api: openai.OpenAI) -> str:
    chunks = list(api.chat.completions.create(
        model="lab", messages=[{"role": "user", "content": "Explain SSE in 30 words"}],
        stream=True, stream_options={"include_usage": True}))
    finish = next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason)
    return (f"{len(chunks)} SSE chunks, finish_reason={finish}, "
            f"usage {chunks[-1].usage.completion_tokens} completion tokens, then [DONE]")


def _tool_loop(client: ollama.Client, api: openai.OpenAI) -> str:
    messages: list = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = api.chat.completions.create(model="lab", messages=messages, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "14 °C, light rain"}]
    second = api.chat.completions.create(model="lab", messages=messages, tools=[WEATHER])
    answer = second.choices[0].message.content
    assert "14 °C" in answer and second.choices[0].finish_reason == "stop"
    return f"{call.function.name}({call.function.arguments}) → tool result → \"{answer[:40]}…\""


def _structured(client: ollama.Client, api: openai.OpenAI) -> str:
    reply = client.chat("lab", messages=[{"role": "user", "content": "A soup recipe"}], format=RECIPE)
    value = json.loads(reply.message.content)
    jsonschema.validate(value, RECIPE)
    return f"valid against the schema: {reply.message.content[:48]}…"


def _thinking(client: ollama.Client, api: openai.OpenAI) -> str:
    parts = list(client.chat("lab-think", messages=[{"role": "user", "content": "Why is the sky blue?"}], stream=True))
    thinking = sum(1 for p in parts if p.message.thinking)
    content = sum(1 for p in parts if p.message.content)
    return f"{thinking} thinking chunks, then {content} content chunks (message.thinking vs message.content)"


def _embeddings(client: ollama.Client, api: openai.OpenAI) -> str:
    native = client.embed("lab-embed", input="compatible").embeddings[0]
    raw = api.embeddings.with_raw_response.create(model="lab-embed", input="compatible", encoding_format="base64")
    packed = base64.b64decode(raw.parse().data[0].embedding) if isinstance(raw.parse().data[0].embedding, str) \
        else struct.pack(f"<{len(native)}f", *raw.parse().data[0].embedding)
    decoded = struct.unpack(f"<{len(packed) // 4}f", packed)
    same = max(abs(a - b) for a, b in zip(decoded, native)) < 1e-6
    return f"{len(native)} dims; /api/embed and /v1 base64 (little-endian float32) agree: {same}"


def _fault(client: ollama.Client, api: openai.OpenAI) -> str:
    seen = 0
    try:
        for _ in client.chat("lab:error-mid-stream", messages=[{"role": "user", "content": "hi"}], stream=True):
            seen += 1
    except ollama.ResponseError as exc:
        native = f"ollama raised ResponseError({exc.error!r}) after {seen} chunks"
    else:
        raise AssertionError("the fault did not surface")
    chunks = list(api.chat.completions.create(model="lab:error-mid-stream", stream=True,
                                              messages=[{"role": "user", "content": "hi"}]))
    finished = any(c.choices and c.choices[0].finish_reason for c in chunks)
    return f"{native}; openai: {len(chunks)} chunks, no error, finish_reason seen: {finished}"


EXCHANGES: list[tuple[str, str, Callable]] = [
    ("stream", "ollama · /api/chat", _native_stream),
    ("stream", "openai · /v1/chat/completions", _openai_stream),
    ("tools", "openai · two turns", _tool_loop),
    ("structured output", "ollama · format=schema", _structured),
    ("thinking", "ollama · lab-think", _thinking),
    ("embeddings", "ollama + openai", _embeddings),
    ("fault", "lab:error-mid-stream", _fault),
]


def run_tour(console: Console | None = None) -> int:
    console = console or Console(width=None if Console().is_terminal else 130)
    console.print("Starting the embedded lab engine (profile ollama, 200 tokens/s) …")
    engine = EngineProcess("--tokens-per-second", "200", "--ttft-ms", "60", "--load-ms", "300")
    failures = 0
    with engine:
        console.print(f"Lab engine at {engine.url}; clients: ollama {version('ollama')}, openai {version('openai')}")
        client = ollama.Client(host=engine.url)
        api = openai.OpenAI(base_url=engine.v1_url, api_key="compatlab", max_retries=0)
        table = Table(title="One conversation of each kind, through the official clients")
        for column in ("kind", "client · route", "ok", "what happened"):
            table.add_column(column)
        for kind, route, exchange in EXCHANGES:
            try:
                detail, ok = exchange(client, api), "✓"
            except Exception as exc:  # a demo row that fails is reported, not fatal
                detail, ok = f"{type(exc).__name__}: {exc}", "✗"
                failures += 1
            table.add_row(kind, route, ok, detail)
        console.print(table)
    code = engine.process.returncode
    clean = code in (0, -15)  # uvicorn finishes its shutdown, then re-raises SIGTERM
    console.print("Lab engine stopped cleanly." if clean else f"Lab engine stopped with exit code {code}.")
    console.print(f"{len(EXCHANGES) - failures} of {len(EXCHANGES)} exchanges behaved as expected.")
    return 1 if failures or not clean else 0
