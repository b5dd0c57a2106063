"""Ollama's native API on the wire: the request models and their checks, the translation of a
request into the lab's conversation, and how replies, errors and faults are written (NDJSON,
Go's JSON). The routes are in native.py; llama_front.py uses these for its Ollama front.

Wire shapes follow current Ollama (api/types.go field order; see shared/reference/ollama-api.md §1-3).
"""

import hashlib
import json
import math
import zlib
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from compatlab.engine.catalog import LabModel
from compatlab.engine.errors import ApiError
from compatlab.engine.lab_model import Conversation, Message, Reply, ToolCall
from compatlab.engine.logprobs import Scorer
from compatlab.engine.runtime import Piece, parse_keep_alive
from compatlab.engine.serving import MID_STREAM_ERROR, DropConnection, Job

NDJSON = "application/x-ndjson"
MODIFIED_AT = "2025-11-01T09:00:00Z"  # Go's time.Time in JSON: RFC 3339, "Z" for UTC, no trailing zeros
CONTEXT_LENGTH = 8192


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # Go's encoding/json ignores unknown fields


class ToolCallFunction(_Open):
    index: int | None = None
    name: str
    arguments: dict[str, Any] = {}


class NativeToolCall(_Open):
    id: str | None = None
    function: ToolCallFunction


class ChatMessage(_Open):
    role: str
    content: str | None = ""
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[NativeToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None


class FunctionSpec(_Open):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolSpec(_Open):
    type: str = "function"
    function: FunctionSpec


class GenerationRequest(_Open):
    model: str = ""
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    stream: bool | None = True
    keep_alive: float | str | None = None
    think: bool | str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None


def check_top_logprobs(top_logprobs: int | None) -> None:
    """Ollama's ChatHandler and GenerateHandler check the range first (server/routes.go@v0.32.15)."""
    if top_logprobs is not None and not 0 <= top_logprobs <= 20:
        raise ApiError(400, "top_logprobs must be between 0 and 20")


class ChatRequest(GenerationRequest):
    messages: list[ChatMessage] | None = None
    tools: list[ToolSpec] | None = None


class GenerateRequest(GenerationRequest):
    prompt: str | None = None
    suffix: str | None = None
    system: str | None = None
    raw: bool | None = None
    template: str | None = None
    context: list[int] | None = None


class EmbedRequest(_Open):
    model: str = ""
    input: str | list[str] | None = None
    truncate: bool | None = True
    dimensions: int | None = None
    options: dict[str, Any] | None = None
    keep_alive: float | str | None = None


class LegacyEmbeddingsRequest(_Open):
    model: str = ""
    prompt: str | None = None


class ShowRequest(_Open):
    model: str | None = None
    name: str | None = None  # deprecated alias Ollama still reads
    verbose: bool | None = None


# ---------------------------------------------------------------- helpers

_INT_OPTIONS = {"seed", "num_predict", "top_k", "num_ctx", "num_keep", "repeat_last_n", "num_batch",
                "num_gpu", "main_gpu", "num_thread"}
_FLOAT_OPTIONS = {"temperature", "top_p", "min_p", "typical_p", "repeat_penalty",
                  "presence_penalty", "frequency_penalty"}


def check_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Type-check the options Ollama knows, in Options.FromMap's words (api/types.go@v0.32.15);
    unknown ones are ignored, as Ollama does. Ollama answers these with a 500 (scheduleRunner's
    error); the lab engine with a 400, a departure named in the README: clients retry a 5xx."""
    options = dict(options or {})
    for key in _INT_OPTIONS & options.keys():
        value = options[key]
        # isfinite first: Python's json reads NaN, Infinity and 1e400, and int() of those raises
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ApiError(400, f'option "{key}" must be of type integer')
        options[key] = int(value)  # JSON numbers are float64 to Go, which truncates them here
    for key in _FLOAT_OPTIONS & options.keys():
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ApiError(400, f'option "{key}" must be of type float32')
    stop = options.get("stop")
    if stop is not None and not isinstance(stop, list):
        raise ApiError(400, 'option "stop" must be of type array')
    if stop is not None and not all(isinstance(s, str) for s in stop):
        raise ApiError(400, 'option "stop" must be of an array of strings')
    return options


def check_format(value: str | dict | None) -> str | dict | None:
    if value is None or value == "":
        return None
    if value == "json" or isinstance(value, dict):
        return value
    # Real Ollama fails here with a 500 at completion time; a lab engine answers 400.
    raise ApiError(400, f'invalid format: "{value}"; expected "json" or a valid JSON Schema object')


def _think(model: LabModel, value: bool | str | None) -> bool:
    if isinstance(value, str):
        if value not in ("high", "medium", "low", "max"):
            raise ApiError(400, f'invalid think value: "{value}" (must be "high", "medium", "low", "max", true, or false)')
        value = True
    if value and not model.thinks:
        raise ApiError(400, f'"{model.name}" does not support thinking')
    # Since v0.12.4 a thinking-capable model thinks unless told not to.
    return model.thinks if value is None else bool(value)


def check_keep_alive(value: float | str | None) -> float:
    try:
        return parse_keep_alive(value)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def go_time(moment: datetime) -> str:
    """A time as Go's time.Time writes itself in JSON (RFC 3339 with nanoseconds): the fraction's
    trailing zeros cut, and "Z" for a zero offset, else +hh:mm."""
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    offset = moment.utcoffset()
    if not offset:
        return stamp + "Z"
    zone = moment.strftime("%z")
    return f"{stamp}{zone[:3]}:{zone[3:]}"


def now() -> str:
    return go_time(datetime.now(UTC))


def ndjson_line(value: dict) -> bytes:
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def tool_call_json(call: ToolCall, index: int) -> dict:
    return {"id": call.call_id(), "function": {"index": index, "name": call.name, "arguments": call.arguments}}


def to_conversation(state, job: Job, body: ChatRequest, options: dict) -> Conversation:
    messages = []
    for m in body.messages or []:
        if m.role.lower() not in ("system", "user", "assistant", "tool"):
            raise ApiError(400, f'invalid role "{m.role}": expected system, user, assistant or tool')
        calls = tuple(ToolCall("", c.function.name, c.function.arguments) for c in m.tool_calls or [])
        messages.append(Message(m.role.lower(), m.content or "", calls, m.tool_name or ""))
    seed = options.get("seed")
    return Conversation(
        family=job.model.family,
        messages=tuple(messages),
        seed=int(seed) if seed is not None and seed >= 0 else state.settings.seed,
        tools=tuple(t.function.model_dump(exclude_none=True) for t in body.tools or []),
        tool_choice="auto",
        format=check_format(body.format),
        think=_think(job.model, body.think),
        num_predict=int(options["num_predict"]) if "num_predict" in options else None,
        stop=tuple(options.get("stop") or ()),
    )


async def fault_lines(job: Job, frame: dict) -> bytes | None:
    """The bytes a mid-stream fault writes in NDJSON, or None for a clean stream."""
    match job.fault.wire:
        case "cut":
            return ndjson_line(frame)[: 40] + b"\n"  # a line cut short: not JSON
        case "blank":
            return b"\n"
        case "error":
            return ndjson_line({"error": MID_STREAM_ERROR})
        case "drop":
            raise DropConnection()
    return None


def model_details(model: LabModel) -> dict:
    return {"parent_model": "", "format": "gguf", "family": model.family, "families": [model.family],
            "parameter_size": model.parameter_size, "quantization_level": "F16"}


def model_digest(model: LabModel) -> str:
    return hashlib.sha256(model.name.encode()).hexdigest()  # bare hex, as /api/tags shows it


def model_size(model: LabModel) -> int:
    return 1_000_000 + zlib.crc32(model.name.encode()) % 100_000


class ChatReply:
    """An /api/chat reply as Ollama writes it: a frame per piece, the done frame, or the whole."""

    def __init__(self, job: Job, reply: Reply, scorer: Scorer) -> None:
        self.job, self.reply, self.scorer = job, reply, scorer

    def frame(self, piece: Piece) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": piece.text if piece.kind == "content" else ""}
        if piece.kind == "thinking":
            message["thinking"] = piece.text
        if piece.kind == "tool_calls":
            message["tool_calls"] = [tool_call_json(c, i) for i, c in enumerate(self.reply.tool_calls)]
        return {"model": self.job.name, "created_at": now(), "message": message, "done": False,
                **self.scorer.piece(piece)}

    def final(self) -> dict:
        return {"model": self.job.name, "created_at": now(), "message": {"role": "assistant", "content": ""},
                "done": True, "done_reason": self.reply.done_reason, **self.job.timing.metrics(self.reply)}

    def whole(self) -> dict:
        reply = self.reply
        message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.content)}
        if reply.thinking:
            message["thinking"] = "".join(reply.thinking)
        if reply.tool_calls:
            message["tool_calls"] = [tool_call_json(c, i) for i, c in enumerate(reply.tool_calls)]
        return {"model": self.job.name, "created_at": now(), "message": message, "done": True,
                "done_reason": reply.done_reason, **self.job.timing.metrics(reply), **self.scorer.whole(reply)}


class GenerateReply:
    """An /api/generate reply as Ollama writes it. The done frame carries `context`, token ids
    for a follow-up request, except in raw mode (GenerateHandler) and when there are none
    (`context,omitempty`): server/routes.go and api/types.go@v0.32.15."""

    def __init__(self, job: Job, reply: Reply, scorer: Scorer, raw: bool) -> None:
        self.job, self.reply, self.scorer = job, reply, scorer
        self.context = {} if raw or not reply.content else {
            "context": [zlib.crc32(t.encode()) % 32000 for t in reply.content]}

    def frame(self, piece: Piece) -> dict:
        line: dict[str, Any] = {"model": self.job.name, "created_at": now(),
                                "response": piece.text if piece.kind == "content" else ""}
        if piece.kind == "thinking":
            line["thinking"] = piece.text
        line["done"] = False
        return {**line, **self.scorer.piece(piece)}

    def final(self) -> dict:
        return {"model": self.job.name, "created_at": now(), "response": "", "done": True,
                "done_reason": self.reply.done_reason, **self.context, **self.job.timing.metrics(self.reply)}

    def whole(self) -> dict:
        reply = self.reply
        result: dict[str, Any] = {"model": self.job.name, "created_at": now(), "response": "".join(reply.content)}
        if reply.thinking:
            result["thinking"] = "".join(reply.thinking)
        result.update({"done": True, "done_reason": reply.done_reason, **self.context,
                       **self.job.timing.metrics(reply), **self.scorer.whole(reply)})
        return result
