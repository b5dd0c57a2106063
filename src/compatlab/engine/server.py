"""Run the lab engine: bind, start uvicorn, announce readiness on stdout."""

import asyncio
import os
import signal
import socket
import sys
import traceback

import uvicorn

from compatlab.engine.app import create_app
from compatlab.engine.settings import EngineSettings
from compatlab.process import READY, die_with_parent  # process.py never imports the engine


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # port 0: the system picks a free one, announced below
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def _serve(server: uvicorn.Server, sock: socket.socket, ready: str) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise SystemExit("the engine stopped while starting")
        await asyncio.sleep(0.005)
    # one write of the whole line: the engines of a group share this pipe, and print() may write
    # the text and its newline apart (unbuffered), letting another engine's line in between
    os.write(sys.stdout.fileno(), f"{ready}\n".encode())
    await task


def serve(settings: EngineSettings, host: str = "127.0.0.1", port: int = 11435) -> int:
    return serve_app(create_app(settings), host, port)


def serve_group(engines: dict[str, EngineSettings], host: str = "127.0.0.1") -> int:
    """`compatlab engine group`: one engine per name, each a child forked after the imports
    above, on a free port, announcing "READY url name". This process passes SIGTERM on and
    ends when they all have; each child dies with it (parent-death signal)."""
    try:
        import uvloop  # noqa: F401 -- imported once, here, for every child
    except ImportError:
        pass
    children, parent = [], os.getpid()
    for name, settings in engines.items():
        pid = os.fork()
        if pid == 0:  # never returns: the parent's loop is not the child's
            code = 1
            try:
                die_with_parent()
                if os.getppid() == parent:  # else it died before the line above
                    code = serve_app(create_app(settings), host, 0, name)
            except BaseException:  # noqa: BLE001 -- said on stderr, which the parent's launcher keeps
                traceback.print_exc()
            finally:
                os._exit(code)
        children.append(pid)

    def stop(signum, frame) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in children:
        os.wait()
    return 0


def serve_app(app, host: str, port: int, name: str = "") -> int:
    try:
        sock = _bind(host, port)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror}. Is another engine running there? "
              "Pick another --port (0 lets the system choose).", file=sys.stderr)
        return 1
    bound = sock.getsockname()[1]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{bound}"
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1,
                            limit_concurrency=4096, backlog=2048)
    server = uvicorn.Server(config)
    try:
        import uvloop  # installed with uvicorn[standard]; noticeably faster per chunk

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    run(_serve(server, sock, f"{READY}{url} {name}".strip()))
    return 0
