"""Tokens/s as a client measures it, against what llama-server reports, on the same requests.

A benchmark, not a test: it prints figures and asserts nothing. Target from issue D: the
client-measured decoding speed is within 5 % of llama-server's own `predicted_per_second`.

The client's figure is the inter-token rate: (tokens - 1) / (arrival of the last token -
arrival of the first). The first token is sampled from the prompt's logits, so the wait before
it is prompt time, not decoding; the tokens after it each take one decode step. llama-server's
figure is predicted_n / predicted_ms. Each request goes once to llama-server's own /v1 (SSE)
and once to the front's /api/chat (NDJSON, where the engine figure is eval_count /
eval_duration), alternating, so both paths see the same machine state.

Run: `make bench` or `.venv/bin/python bench/real_tokens_per_second.py [--requests 8 --tokens 128]`.
"""

import argparse
import json
import statistics
import time

import httpx

from compatlab.llama import MODEL_NAME, machine_summary
from compatlab.process import EngineProcess

PROMPTS = ["Write a short story about a robot who learns to paint.", "Explain how a bicycle works.",
           "Describe a walk through a forest in autumn.", "Tell me about the history of bread."]


def timed_lines(client: httpx.Client, url: str, body: dict) -> list[tuple[float, str]]:
    with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        return [(time.perf_counter(), line) for line in response.iter_lines()]


def via_llama_server(client: httpx.Client, url: str, body: dict) -> tuple[float, float, int]:
    arrivals, tokens, engine = [], 0, 0.0
    for at, line in timed_lines(client, url + "/v1/chat/completions",
                                {**body, "stream": True, "stream_options": {"include_usage": True}}):
        if not line.startswith("data: {"):
            continue
        event = json.loads(line[6:])
        if any((c.get("delta") or {}).get("content") for c in event.get("choices") or []):
            arrivals.append(at)
        if event.get("timings"):
            engine = event["timings"]["predicted_per_second"]
            tokens = event["timings"]["predicted_n"]
    return client_rate(arrivals, tokens), engine, tokens


def via_front(client: httpx.Client, url: str, body: dict) -> tuple[float, float, int]:
    native = {"model": body["model"], "messages": body["messages"],
              "options": {"num_predict": body["max_tokens"], "seed": body["seed"], "temperature": body["temperature"]}}
    arrivals, final = [], {}
    for at, line in timed_lines(client, url + "/api/chat", native):
        frame = json.loads(line)
        if frame.get("done"):
            final = frame
        elif frame["message"]["content"]:
            arrivals.append(at)
    engine = final["eval_count"] / final["eval_duration"] * 1e9
    return client_rate(arrivals, final["eval_count"]), engine, final["eval_count"]


def client_rate(arrivals: list[float], tokens: int) -> float:
    # a chunk may carry more than one token (a multi-byte character split across tokens), so the
    # span is timed on chunks and the count comes from the engine
    return (tokens - 1) / (arrivals[-1] - arrivals[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    with EngineProcess("--backend", "llama").start(timeout=120) as front, httpx.Client(timeout=120) as client:
        llama_url = client.get(front.url + "/lab/status").json()["llama_server"]
        rows = {"llama-server /v1 (SSE)": [], "front /api/chat (NDJSON)": []}
        for i in range(args.requests + 1):
            body = {"model": MODEL_NAME, "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                    "max_tokens": args.tokens, "seed": i, "temperature": 0.8}
            for name, measure, url in (("llama-server /v1 (SSE)", via_llama_server, llama_url),
                                       ("front /api/chat (NDJSON)", via_front, front.url)):
                result = measure(client, url, body)
                if i:  # the first round warms the caches and is not counted
                    rows[name].append(result)
    print(f"{args.requests} requests of up to {args.tokens} tokens, SmolLM2-135M Q4_1, {machine_summary()}")
    print(f"{'path':26} {'client tok/s':>12} {'engine tok/s':>12} {'client/engine':>14} {'worst':>7}")
    for name, results in rows.items():
        ratios = [c / e for c, e, _ in results]
        print(f"{name:26} {statistics.median(c for c, _, _ in results):12.1f} "
              f"{statistics.median(e for _, e, _ in results):12.1f} {statistics.median(ratios):14.3f} "
              f"{max(ratios, key=lambda r: abs(r - 1)):7.3f}")
    print("target: client/engine within 0.95-1.05")


if __name__ == "__main__":
    main()
