"""The benchmarks' load generator: a bare asyncio HTTP client that counts stream frames
without parsing them, so the figures are the server's, not a client library's."""

import asyncio
import time


async def count_frames(url: str, path: str, body: bytes, marker: bytes) -> int:
    """POST body to url+path over a fresh connection; how many times marker occurs in the reply."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (path.encode(), host.encode(), len(body), body))
    frames, tail = 0, b""
    while data := await reader.read(65536):
        data = tail + data
        frames += data.count(marker)
        tail = data[-(len(marker) - 1):]  # a marker split across reads is counted once
    writer.close()
    return frames


def frames_per_second(url: str, path: str, body: bytes, marker: bytes, streams: int) -> float:
    """Aggregate frames/s of `streams` identical streams run at once."""

    async def all_at_once() -> int:
        return sum(await asyncio.gather(*(count_frames(url, path, body, marker) for _ in range(streams))))

    start = time.perf_counter()
    frames = asyncio.run(all_at_once())
    return frames / (time.perf_counter() - start)
