"""What happens in time: model residency (load, keep_alive, unload), pacing and timing."""

import asyncio
import math
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from compatlab.engine.lab_model import Reply
from compatlab.engine.profiles import Profile
from compatlab.engine.settings import EngineSettings

DEFAULT_KEEP_ALIVE = 300.0  # Ollama's default: 5 minutes
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_DURATION = (2**63 - 1) / 1e9  # Go's time.Duration limit in seconds, about 292 years


class ClientGone(Exception):
    """The client disconnected before the work was done."""


def parse_keep_alive(value: object) -> float:
    """Seconds to keep a model loaded (inf: forever), from a number or a Go duration string."""
    if value is None:
        return DEFAULT_KEEP_ALIVE
    if isinstance(value, bool):
        raise ValueError(f"invalid keep_alive: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        if body in ("0", ""):
            if body == "":
                raise ValueError(f'time: invalid duration "{value}"')
            return 0.0
        parts = _DURATION_PART.findall(body)
        if not parts or "".join(n + u for n, u in parts) != body:
            raise ValueError(f'time: invalid duration "{value}"')
        seconds = sign * sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
        if abs(seconds) > _MAX_DURATION:  # Go's ParseDuration refuses an overflow
            raise ValueError(f'time: invalid duration "{value}"')
    else:
        raise ValueError(f"invalid keep_alive: {value!r}")
    if math.isnan(seconds):
        raise ValueError("invalid keep_alive: NaN")
    # Longer than Go can hold means forever; a finite deadline that far breaks datetime in /api/ps.
    return math.inf if seconds < 0 or seconds > _MAX_DURATION else seconds


class Residency:
    """Which models are loaded and until when, as Ollama's scheduler shows them in /api/ps."""

    def __init__(self) -> None:
        self._expires: dict[str, float] = {}  # name -> time.time() deadline (inf: forever)
        self._locks: dict[str, asyncio.Lock] = {}

    def is_loaded(self, name: str) -> bool:
        deadline = self._expires.get(name)
        if deadline is not None and deadline <= time.time():
            del self._expires[name]
            return False
        return deadline is not None

    async def ensure_loaded(
        self, name: str, load_seconds: float, disconnected: Callable[[], Awaitable[bool]]
    ) -> int:
        """Load the model if needed; returns the ns from the call to a loaded model: Ollama's
        load_duration, checkpointLoaded - checkpointStart (server/routes.go), is never 0, a
        few microseconds when the model was already in memory."""
        called = time.perf_counter()
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:  # a second request waits for the first one's load, as in Ollama
            if self.is_loaded(name):
                return max(1, int((time.perf_counter() - called) * 1e9))
            start = time.perf_counter()
            deadline = start + load_seconds
            while (left := deadline - time.perf_counter()) > 0:
                await asyncio.sleep(min(left, 0.05))
                if await disconnected():  # an abandoned load is not finished
                    raise ClientGone()
            self._expires[name] = time.time() + DEFAULT_KEEP_ALIVE
            return max(1, int((time.perf_counter() - start) * 1e9))

    def keep(self, name: str, seconds: float) -> None:
        """Set how long the model stays after this request; 0 unloads it now."""
        if seconds <= 0:
            self._expires.pop(name, None)
        else:
            self._expires[name] = time.time() + seconds

    def loaded(self) -> list[tuple[str, datetime]]:
        """Loaded models with their expiry (local time, like Ollama), longest-lived first."""
        names = [n for n in list(self._expires) if self.is_loaded(n)]
        far_future = datetime.now().astimezone() + timedelta(days=365 * 200)
        rows = []
        for name in names:
            deadline = self._expires[name]
            expires = far_future if math.isinf(deadline) else datetime.fromtimestamp(deadline).astimezone()
            rows.append((name, expires))
        rows.sort(key=lambda row: row[1], reverse=True)
        return rows


class Pacer:
    """Sleeps like an engine: prompt evaluation, then one decode step per token, with jitter."""

    def __init__(self, settings: EngineSettings, seed: str) -> None:
        self._settings = settings
        self._rng = random.Random(f"{settings.seed}:{seed}")  # seeded: the same request, the same rhythm
        self._next = 0.0

    def _jitter(self) -> float:
        return max(0.2, self._rng.gauss(1.0, self._settings.jitter))

    async def prompt(self) -> None:
        self._next = time.perf_counter()
        if self._settings.ttft_ms > 0:
            await self._until(self._settings.ttft_ms / 1000 * self._jitter())

    async def token(self) -> None:
        if self._settings.tokens_per_second > 0:
            await self._until(self._jitter() / self._settings.tokens_per_second)

    async def _until(self, delay: float) -> None:
        # Sleep to an absolute schedule so timer overshoot does not add up over long replies.
        self._next += delay
        left = self._next - time.perf_counter()
        if left > 0:
            await asyncio.sleep(left)


@dataclass
class Piece:
    """One streamed unit of a reply."""

    kind: str  # "thinking" | "content" | "tool_calls"
    text: str = ""


@dataclass
class Timing:
    """Ollama's six metrics, measured on the real clock in nanoseconds."""

    start: int = field(default_factory=time.perf_counter_ns)
    load_ns: int = 0
    prompt_ns: int = 1
    eval_ns: int = 1

    def metrics(self, reply: Reply) -> dict:
        return go_metrics({
            "total_duration": max(1, time.perf_counter_ns() - self.start),
            "load_duration": self.load_ns,
            "prompt_eval_count": reply.prompt_tokens,
            "prompt_eval_duration": self.prompt_ns,
            "eval_count": reply.eval_count,
            "eval_duration": self.eval_ns if reply.eval_count else 0,  # no token, no time spent on one
        })


def go_metrics(metrics: dict) -> dict:
    """Ollama's six metrics as Go writes them: every field of api.Metrics is `omitempty`, so a
    zero (no tokens generated, say) is left out, not sent as 0 (api/types.go@v0.32.15)."""
    return {name: value for name, value in metrics.items() if value}


async def paced_pieces(reply: Reply, pacer: Pacer, timing: Timing) -> AsyncIterator[Piece]:
    """The reply as it would come out of an engine: thinking, content, then tool calls."""
    prompt_start = time.perf_counter_ns()
    await pacer.prompt()
    eval_start = time.perf_counter_ns()
    timing.prompt_ns = max(1, eval_start - prompt_start)
    for token in reply.thinking:
        await pacer.token()
        yield Piece("thinking", token)
    for token in reply.content:
        await pacer.token()
        yield Piece("content", token)
    if reply.tool_calls:
        for _ in range(reply.tool_call_tokens):  # a call is decoded token by token, sent whole
            await pacer.token()
        yield Piece("tool_calls")
    timing.eval_ns = max(1, time.perf_counter_ns() - eval_start)


@dataclass
class EngineState:
    """Everything one engine process shares between requests."""

    settings: EngineSettings
    profile: Profile
    residency: Residency = field(default_factory=Residency)
    active_streams: int = 0
    requests_served: int = 0
