"""Run the lab engine: bind, start uvicorn, announce readiness on stdout."""

import asyncio
import socket
import sys

import uvicorn

from compatlab.engine.app import create_app
from compatlab.engine.settings import EngineSettings
from compatlab.process import READY  # the line EngineProcess waits for; process.py never imports the engine


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # port 0: the system picks a free one, announced below
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def _serve(server: uvicorn.Server, sock: socket.socket, url: str) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise SystemExit("the engine stopped while starting")
        await asyncio.sleep(0.005)
    print(f"{READY}{url}", flush=True)
    await task


def serve(settings: EngineSettings, host: str = "127.0.0.1", port: int = 11435) -> int:
    return serve_app(create_app(settings), host, port)


def serve_app(app, host: str, port: int) -> int:
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

        uvloop.run(_serve(server, sock, url))
    except ImportError:
        asyncio.run(_serve(server, sock, url))
    return 0
