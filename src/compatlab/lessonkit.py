"""Support code lessons use but do not teach: serving a learner's app, and servers that misbehave.

- `serve_app(app)` runs an ASGI app (the learner's FastAPI proxy) with uvicorn in a background
  thread of the notebook's own kernel, on a free loopback port, and collects what the app logs.
- `black_hole()` is a port that accepts connections and never answers: a host that hangs.
- `closed_port()` is a port nothing listens on: a daemon that is down.
"""

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class ServedApp:
    """An app being served: where it is, and the errors it logged (tracebacks included)."""

    url: str
    errors: list[str] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self, served: ServedApp) -> None:
        super().__init__(logging.WARNING)
        self.served = served

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.served.errors.append(text)


def _loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def serve_app(app, timeout: float = 10.0) -> Iterator[ServedApp]:
    """Serve `app` on 127.0.0.1 while the block runs. Its errors are kept in `.errors` instead
    of reaching stderr, where nbgrader would count them against a test cell."""
    import uvicorn  # here, not above: a setup cell that only wants black_hole() need not load it

    sock = _loopback_socket()
    served = ServedApp(f"http://127.0.0.1:{sock.getsockname()[1]}")
    logger = logging.getLogger("uvicorn.error")
    handler, propagate = _Collect(served), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"serve_app {served.url}")
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start: {served.errors or 'no error logged'}")
            time.sleep(0.01)
        yield served
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        logger.removeHandler(handler)
        logger.propagate = propagate


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """The URL of a host that hangs: the kernel completes each TCP handshake (the socket listens)
    but nobody ever reads or answers, so a client waits until its own timeout."""
    sock = _loopback_socket()
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def closed_port() -> str:
    """The URL of a port nothing listens on: connecting is refused at once, like a stopped daemon."""
    sock = _loopback_socket()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
