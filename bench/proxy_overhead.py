"""Proxy overhead: the ndjson-sse-proxy lesson's reference proxy against the engine's own /v1.

A benchmark, not a test: it prints figures and asserts nothing. Everything is measured in one
run, direct and proxied side by side, and reported as differences and ratios (the machine is
noisy). Targets from issue C (2 cores): added time to first content token <= 0.5 ms at p50;
added time per chunk <= 0.05 ms; >= 0.95x the direct chunks/s at 64 concurrent streams.

Three processes share the cores: a lab engine, the proxy (the master's own solution cells,
served by uvicorn with uvloop and httptools, as the engine is) and this client. Throughput is
measured twice: with the engine paced like a real model (60 tokens/s per stream, so the engine
sets the pace, as a GPU does) and unpaced (the engine streams as fast as Python can: the
CPU-bound worst case, where every cycle the proxy spends is taken from the engine).

Run: `make bench` or `.venv/bin/python bench/proxy_overhead.py [--requests 300]`.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx
from frame_counter import frames_per_second

from compatlab.grader.course import Course
from compatlab.grader.release import reference_code
from compatlab.process import EngineProcess

PROXY_CELLS = ("native_request", "ChunkTranslator", "relay", "make_app")


def serve_proxy(upstream: str, port: int, passthrough: bool) -> None:
    """In a child process: the lesson's reference make_app(upstream) on 127.0.0.1:port, or the
    pass-through floor."""
    import uvicorn

    os.environ["COMPATLAB_ENGINES"] = json.dumps({"ollama": upstream, "paced": upstream})  # start none
    namespace: dict = {}
    exec(compile(reference_code(Course(), "ndjson-sse-proxy", PROXY_CELLS), "reference proxy", "exec"), namespace)
    app = passthrough_app(upstream) if passthrough else namespace["make_app"](upstream)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools")


def passthrough_app(upstream: str):
    """The floor of this stack: FastAPI and httpx copying the engine's own /v1 bytes untouched.
    Whatever the reference proxy adds above it is translation."""
    from fastapi import FastAPI, Request
    from fastapi.responses import StreamingResponse
    from starlette.background import BackgroundTask

    app = FastAPI()
    client = httpx.AsyncClient(base_url=upstream)

    @app.post("/v1/chat/completions")
    async def forward(request: Request):
        response = await client.send(client.build_request("POST", "/v1/chat/completions", content=await request.body(),
                                                          headers={"content-type": "application/json"}), stream=True)
        return StreamingResponse(response.aiter_raw(), media_type="text/event-stream",
                                 background=BackgroundTask(response.aclose))

    return app


class Proxy:
    """The reference proxy in its own process."""

    def __init__(self, upstream: str, passthrough: bool = False) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, __file__, "--serve", upstream, "--port", str(self.port)]
        self.process = subprocess.Popen(command + (["--passthrough"] if passthrough else []), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(self.url + "/v1/chat/completions", json={}, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the proxy did not start")

    def cpu_seconds(self) -> float:
        fields = open(f"/proc/{self.process.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def body(words: int) -> dict:
    return {"model": "lab:latest", "stream": True, "messages": [{"role": "user", "content": f"Write {words} words"}]}


def first_content(client: httpx.Client, url: str) -> float:
    """Seconds from sending a request to its first content chunk; the rest is read and dropped."""
    start = time.perf_counter()
    seen = None
    with client.stream("POST", url + "/v1/chat/completions", json=body(1)) as response:
        for line in response.iter_lines():
            if seen is None and line.startswith("data: {") and '"content":"' in line and '"content":""' not in line:
                seen = time.perf_counter() - start
    return seen


def whole_stream(client: httpx.Client, url: str, words: int) -> float:
    start = time.perf_counter()
    with client.stream("POST", url + "/v1/chat/completions", json=body(words)) as response:
        for _ in response.iter_bytes():
            pass
    return time.perf_counter() - start


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def chunks_per_second(url: str, words: int, streams: int, rounds: int) -> float:
    payload = json.dumps(body(words)).encode()
    return statistics.median(frames_per_second(url, "/v1/chat/completions", payload, b"data: ", streams)
                             for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per side for time to first token")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--passthrough", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_proxy(args.serve, args.port, args.passthrough)

    with EngineProcess(fast=True) as fast, EngineProcess("--load-ms", "0") as paced:
        proxies = {fast.url: Proxy(fast.url), paced.url: Proxy(paced.url), "floor": Proxy(fast.url, passthrough=True)}
        try:
            report(fast.url, paced.url, proxies, args.requests)
        finally:
            for proxy in proxies.values():
                proxy.stop()


def report(fast: str, paced: str, proxies: dict[str, Proxy], requests: int) -> None:
    proxy, floor = proxies[fast], proxies["floor"]
    print("proxy overhead: the ndjson-sse-proxy reference solution against the engine's own /v1")
    with httpx.Client(timeout=60) as client:
        for url in (fast, proxy.url, floor.url):  # warm up connections and code paths
            for _ in range(20):
                first_content(client, url)
        direct, proxied, copied = [], [], []
        for _ in range(requests):  # interleaved, so drift hits all sides alike
            direct.append(first_content(client, fast))
            proxied.append(first_content(client, proxy.url))
            copied.append(first_content(client, floor.url))
        print(f"\ntime to first content token, unpaced engine, {requests} requests each (ms)")
        print(f"{'':<34} {'p50':>8} {'p99':>8} {'added p50':>10} {'added p99':>10}")
        for label, values in (("direct /v1", direct), ("through the reference proxy", proxied),
                              ("through a pass-through (floor)", copied)):
            p50, p99 = percentile(values, 0.5) * 1e3, percentile(values, 0.99) * 1e3
            added = (p50 - percentile(direct, 0.5) * 1e3, p99 - percentile(direct, 0.99) * 1e3)
            print(f"{label:<34} {p50:>8.3f} {p99:>8.3f} {added[0]:>10.3f} {added[1]:>10.3f}")
        added_p50 = (percentile(proxied, 0.5) - percentile(direct, 0.5)) * 1e3
        print("target: the reference proxy adds <= 0.5 ms at p50")

        words, rounds = 2000, 7
        direct_s, proxied_s = [], []
        cpu_before = proxy.cpu_seconds()
        for _ in range(rounds):
            direct_s.append(whole_stream(client, fast, words))
            proxied_s.append(whole_stream(client, proxy.url, words))
        cpu_per_chunk = (proxy.cpu_seconds() - cpu_before) / (rounds * words) * 1e3
        per_chunk = ((statistics.median(proxied_s) - statistics.median(direct_s)) * 1e3 - added_p50) / words
        print(f"\none stream of {words} chunks, unpaced engine, median of {rounds}: direct "
              f"{statistics.median(direct_s) * 1e3:.1f} ms, through proxy {statistics.median(proxied_s) * 1e3:.1f} ms")
        print(f"added time per chunk: {per_chunk:.4f} ms   target: <= 0.05 ms")
        print(f"proxy CPU per chunk:  {cpu_per_chunk:.4f} ms (the proxy's own process)")

    print("\naggregate chunks/s, N concurrent streams, median of 3 rounds")
    print(f"{'engine':<34} {'streams':>7} {'direct':>9} {'proxy':>9} {'ratio':>6}")
    for label, engine, words in (("paced (60 tokens/s per stream)", paced, 200),
                                 ("unpaced (CPU-bound worst case)", fast, 1000)):
        for streams in (1, 16, 64):
            alone = chunks_per_second(engine, words, streams, 3)
            through = chunks_per_second(proxies[engine].url, words, streams, 3)
            print(f"{label:<34} {streams:>7} {alone:>9,.0f} {through:>9,.0f} {through / alone:>6.2f}")
    print("target: ratio >= 0.95 at 64 streams")


if __name__ == "__main__":
    main()
