"""Lab engine benchmark: aggregate chunks/s at 1, 8 and 32 concurrent streams, and start-up time.

A benchmark, not a test: it prints figures and asserts nothing. Targets (2-core machine):
>= 10,000 chunks/s at 32 streams with --tokens-per-second 0; ready <= 1 s after process start.

The client is a bare asyncio socket reader that counts frames without parsing JSON, so the
figure is the engine's, not the client library's. Run: `make bench` or
`.venv/bin/python bench/engine_throughput.py [--tokens 2000] [--rounds 3]`.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import httpx
from frame_counter import frames_per_second

from compatlab.process import EngineProcess

ROUTES = {
    "native NDJSON": ("/api/chat", b"}\n", lambda words: {
        "model": "lab", "messages": [{"role": "user", "content": f"Write {words} words"}]}),
    "/v1 SSE": ("/v1/chat/completions", b"data: ", lambda words: {
        "model": "lab", "stream": True, "messages": [{"role": "user", "content": f"Write {words} words"}]}),
}


def throughput(tokens: int, rounds: int) -> list[tuple[str, int, float]]:
    rows = []
    with EngineProcess(fast=True) as engine:
        httpx.post(engine.url + "/api/chat", json={"model": "lab", "messages": []})  # load once
        for name, (path, marker, make) in ROUTES.items():
            body = json.dumps(make(tokens)).encode()
            for streams in (1, 8, 32):
                rates = []
                for _ in range(rounds):
                    rates.append(frames_per_second(engine.url, path, body, marker, streams))
                rows.append((name, streams, statistics.median(rates)))
    return rows


def startup(rounds: int) -> list[float]:
    """Seconds from process start to the first good /api/version."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "compatlab", "engine", "serve", "--port", "11499"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    if httpx.get("http://127.0.0.1:11499/api/version", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.005)
            times.append(time.perf_counter() - start)
        finally:
            process.terminate()
            process.wait()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000, help="tokens per stream")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"lab engine throughput, --tokens-per-second 0, {args.tokens} tokens per stream, "
          f"median of {args.rounds} rounds")
    print(f"{'route':<15} {'streams':>7} {'chunks/s':>10}")
    for name, streams, rate in throughput(args.tokens, args.rounds):
        print(f"{name:<15} {streams:>7} {rate:>10,.0f}")
    times = startup(5)
    print(f"ready after process start: median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms (5 starts)")


if __name__ == "__main__":
    main()
