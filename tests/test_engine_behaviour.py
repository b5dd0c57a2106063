"""Engine-wide behaviour: determinism, pacing, concurrency, disconnects, residency."""

import asyncio
import json
import time

import httpx
import pytest

from compatlab.engine.runtime import parse_keep_alive
from compatlab.engine.tokens import tokenize
from support import WEATHER_TOOL, ndjson_lines, sse_events

REQUESTS = [
    ("/api/chat", {"model": "lab", "stream": False, "messages": [{"role": "user", "content": "Describe Rome"}]}),
    ("/api/chat", {"model": "lab-think", "stream": False, "messages": [{"role": "user", "content": "Why?"}]}),
    ("/api/chat", {"model": "lab", "stream": False, "tools": [WEATHER_TOOL],
                   "messages": [{"role": "user", "content": "Weather in Lima"}]}),
    ("/api/chat", {"model": "lab", "stream": False, "format": {"type": "object", "properties": {
        "n": {"type": "integer"}, "s": {"type": "array", "items": {"type": "string"}, "minItems": 2}}}, "messages": [
        {"role": "user", "content": "json"}]}),
    ("/api/chat", {"model": "lab", "stream": False, "options": {"seed": 7},
                   "messages": [{"role": "user", "content": "Describe Rome"}]}),
    ("/api/embed", {"model": "lab-embed", "input": ["a", "b"]}),
    ("/v1/chat/completions", {"model": "lab", "messages": [{"role": "user", "content": "Describe Rome"}]}),
]


def _stable(path: str, body: dict) -> dict:
    """The parts of a response that must not change between runs: content and counts, not times or ids."""
    if path == "/api/embed":
        return {"embeddings": body["embeddings"]}
    if path == "/api/chat":
        return {"message": body["message"], "prompt_eval_count": body["prompt_eval_count"],
                "eval_count": body["eval_count"], "done_reason": body["done_reason"]}
    return {"message": body["choices"][0]["message"], "usage": body["usage"]}


def test_determinism_across_two_engine_processes(engines):
    first, second = engines.fresh(), engines.fresh()
    for path, request in REQUESTS:
        a = httpx.post(first.url + path, json=request, timeout=30).json()
        b = httpx.post(second.url + path, json=request, timeout=30).json()
        assert _stable(path, a) == _stable(path, b), path


def test_seed_changes_the_reply(http):
    base = {"model": "lab", "stream": False, "messages": [{"role": "user", "content": "Describe Rome"}]}
    one = http.post("/api/chat", json={**base, "options": {"seed": 1}}).json()["message"]["content"]
    two = http.post("/api/chat", json={**base, "options": {"seed": 2}}).json()["message"]["content"]
    assert one != two


def test_engine_seed_flag(engines):
    request = {"model": "lab", "stream": False, "messages": [{"role": "user", "content": "Describe Rome"}]}
    default = httpx.post(engines.get().url + "/api/chat", json=request).json()["message"]["content"]
    seeded = httpx.post(engines.get("--seed", "5").url + "/api/chat", json=request).json()["message"]["content"]
    assert default != seeded


def test_tokenizer_is_lossless():
    text = 'Hello, world!  {"a": [1, 22, 333444]}\n\tÜnïcode — ok '
    assert "".join(tokenize(text)) == text


@pytest.mark.parametrize("value, seconds", [
    (None, 300), (0, 0), ("0", 0), (60, 60), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25),
    (-1, float("inf")), ("-1m", float("inf")),
])
def test_keep_alive_parsing(value, seconds):
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize("value", ["forever", "5", "", "1x", True])
def test_keep_alive_rejects(value):
    with pytest.raises(ValueError):
        parse_keep_alive(value)


def test_pacing_matches_settings(engines):
    engine = engines.get("--tokens-per-second", "100", "--ttft-ms", "200", "--load-ms", "0", fast=False)
    start = time.perf_counter()
    arrivals = []
    with httpx.stream("POST", engine.url + "/api/chat", json={
            "model": "lab", "messages": [{"role": "user", "content": "Write 60 words"}]}) as response:
        for line in response.iter_lines():
            arrivals.append((time.perf_counter() - start, json.loads(line)))
    done = arrivals[-1][1]
    assert done["eval_count"] == 60
    assert 0.15 <= arrivals[0][0] <= 1.0  # time to first token: the prompt phase plus one step
    engine_rate = done["eval_count"] / done["eval_duration"] * 1e9
    client_rate = (len(arrivals) - 2) / (arrivals[-2][0] - arrivals[0][0])
    assert 70 <= engine_rate <= 130 and 60 <= client_rate <= 140
    assert done["prompt_eval_duration"] >= 0.1e9


def test_many_simultaneous_streams(engine):
    async def one(client: httpx.AsyncClient, i: int) -> int:
        request = {"model": "lab", "stream": True, "messages": [{"role": "user", "content": f"Stream {i}, 40 words"}]}
        async with client.stream("POST", "/v1/chat/completions", json=request) as response:
            text = (await response.aread()).decode()
        return text.count("data: ")

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=engine.url, timeout=30,
                                     limits=httpx.Limits(max_connections=100)) as client:
            return await asyncio.gather(*(one(client, i) for i in range(64)))

    counts = asyncio.run(run())
    assert counts == [42] * 64  # 40 token chunks (role on the first), finish chunk, [DONE]: nothing lost


def _active_streams(url: str) -> int:
    return httpx.get(url + "/lab/status").json()["active_streams"]


def test_disconnect_frees_the_stream(engines):
    engine = engines.get("--tokens-per-second", "20", "--ttft-ms", "0", "--load-ms", "0", fast=False)
    for path, request in [
        ("/api/chat", {"model": "lab", "messages": [{"role": "user", "content": "Write 500 words"}]}),
        ("/v1/chat/completions", {"model": "lab", "stream": True,
                                  "messages": [{"role": "user", "content": "Write 500 words"}]}),
    ]:
        with httpx.stream("POST", engine.url + path, json=request) as response:
            lines = response.iter_lines()  # held: dropping it would close the response early
            for _ in range(3):
                next(lines)
            assert _active_streams(engine.url) == 1
        deadline = time.monotonic() + 2  # 500 tokens at 20/s would take 25 s; the engine must stop now
        while _active_streams(engine.url) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _active_streams(engine.url) == 0, path


def test_ndjson_and_sse_frames_agree_with_usage(http):
    native = ndjson_lines(http.post("/api/chat", json={
        "model": "lab-think", "messages": [{"role": "user", "content": "Hi"}]}))
    sse = sse_events(http.post("/v1/chat/completions", json={
        "model": "lab-think", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Hi"}]}))
    token_chunks = len(native) - 1
    assert native[-1]["eval_count"] == token_chunks == sse[-2]["usage"]["completion_tokens"]
