"""The sandbox's one way out: the lab engines, relayed between loopback TCP and Unix sockets.

A sandboxed kernel has a network namespace of its own, so the engines' 127.0.0.1 ports are not
there. The grader runs `relay.py out PORT=SOCKET…` (a Unix socket per engine, forwarded to the
engine's port); inside the sandbox the kernel itself runs the "in" side in a thread (see
kernel.py: a thread dies with the kernel, where a separate process would outlive it),
listening on the same loopback ports and forwarding to those sockets. The kernel's code
keeps using the engines' usual URLs. asyncio on each side, no process per connection: lessons
open hundreds of them.
"""

import asyncio
import os
import resource
import sys
import threading


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


class _Count:
    open = 0


def _handler(connect, limit: int | None = None, count: _Count = _Count()):
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if limit is not None and count.open >= limit:  # a sandbox hoarding connections gets no more
            writer.close()
            return
        count.open += 1
        try:
            try:
                upstream_reader, upstream_writer = await connect()
            except OSError:  # the engine is gone: the client sees a closed connection
                writer.close()
                return
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            count.open -= 1
    return relay


async def listen(direction: str, pairs: list[tuple[int, str]], limit: int | None = None) -> None:
    count = _Count()  # one budget for all of this relay's sockets: they serve one worker's sandboxes
    for port, path in pairs:
        if direction == "in":  # inside the sandbox: loopback port -> Unix socket
            await asyncio.start_server(_handler(lambda p=path: asyncio.open_unix_connection(p)), "127.0.0.1", port)
        else:  # the grader's side: Unix socket -> the engine's loopback port
            await asyncio.start_unix_server(
                _handler(lambda p=port: asyncio.open_connection("127.0.0.1", p), limit, count), path)
            os.chmod(path, 0o777)  # the sandbox users connect to it


def parse(specs: list[str]) -> list[tuple[int, str]]:
    """["11435=/run/bridges/11435.sock", …] -> [(11435, "/run/bridges/11435.sock"), …]"""
    return [(int(port), path) for port, path in (spec.split("=", 1) for spec in specs)]


def start_in_thread(direction: str, pairs: list[tuple[int, str]]) -> None:
    """Listen in a daemon thread; return once the listeners are up."""
    loop = asyncio.new_event_loop()
    loop.run_until_complete(listen(direction, pairs))
    threading.Thread(target=loop.run_forever, daemon=True, name="compatlab relay").start()


async def _serve_forever(direction: str, pairs: list[tuple[int, str]], limit: int | None) -> None:
    await listen(direction, pairs, limit)
    print("ready", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    direction, *specs = argv
    limits = [int(spec.split("=", 1)[1]) for spec in specs if spec.startswith("--limit=")]
    # two descriptors per connection (the sandbox's and the engine's): room for the limit, always
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_serve_forever(direction, parse([s for s in specs if not s.startswith("--")]),
                               limits[0] if limits else None))


if __name__ == "__main__":
    main(sys.argv[1:])
