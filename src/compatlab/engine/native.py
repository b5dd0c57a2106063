"""Ollama's native API: /api/*, NDJSON streams, {"error": "..."} errors.

Wire shapes follow current Ollama (api/types.go field order; see shared/reference/ollama-api.md §1-3).
"""

import hashlib
import json
import math
import random
import struct
import zlib
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from compatlab.engine.catalog import MODELS, LabModel, find_model
from compatlab.engine.errors import ApiError
from compatlab.engine.lab_model import Conversation, Message, Reply, ToolCall
from compatlab.engine.logprobs import Scorer
from compatlab.engine.runtime import EngineState, Pacer, paced_pieces, parse_keep_alive
from compatlab.engine.serving import (
    MID_STREAM_ERROR, DropConnection, Job, check_insert, counted, fault_position, find, load, plan, state_of,
)
from compatlab.engine.tokens import count_tokens

router = APIRouter(tags=["ollama"])
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


class _Generation(_Open):
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


class ChatRequest(_Generation):
    messages: list[ChatMessage] | None = None
    tools: list[ToolSpec] | None = None


class GenerateRequest(_Generation):
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


def _tool_call_json(call: ToolCall, index: int) -> dict:
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


async def _fault_lines(job: Job, frame: dict) -> bytes | None:
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


def _stream(request: Request, job: Job, reply: Reply, keep: float, frame, final_frame) -> StreamingResponse:
    """NDJSON: one JSON object per line, the done frame last, no end marker."""
    state = state_of(request)

    async def lines():
        pacer = Pacer(state.settings, f"{job.model.name}:{reply.prompt_tokens}:{reply.eval_count}")
        pieces = len(reply.thinking) + len(reply.content) + (1 if reply.tool_calls else 0)
        strike = fault_position(pieces) if job.fault.wire else -1
        sent = 0
        async for piece in paced_pieces(reply, pacer, job.timing):
            line = frame(piece)
            yield ndjson_line(line)
            sent += 1
            if sent == strike:
                extra = await _fault_lines(job, line)
                if extra is not None:
                    yield extra
                if job.fault.ends_stream:
                    return  # no done frame: the stream just ends
        state.residency.keep(job.model.name, keep)
        yield ndjson_line(final_frame())

    return StreamingResponse(counted(state, lines()), media_type=NDJSON)


# ---------------------------------------------------------------- routes


@router.api_route("/", methods=["GET", "HEAD"], response_class=PlainTextResponse, include_in_schema=False)
async def root() -> str:
    return "Ollama is running"


@router.api_route("/api/version", methods=["GET", "HEAD"])
async def version(request: Request) -> dict:
    return {"version": state_of(request).profile.version}


def _details(model: LabModel) -> dict:
    return {"parent_model": "", "format": "gguf", "family": model.family, "families": [model.family],
            "parameter_size": model.parameter_size, "quantization_level": "F16"}


def _digest(model: LabModel) -> str:
    return hashlib.sha256(model.name.encode()).hexdigest()  # bare hex, as /api/tags shows it


def _size(model: LabModel) -> int:
    return 1_000_000 + zlib.crc32(model.name.encode()) % 100_000


@router.api_route("/api/tags", methods=["GET", "HEAD"])
async def tags() -> dict:
    # the list's details also carry the model's lengths, which /api/show and /api/ps leave out
    # (server/model_list_cache.go@v0.32.15; both `omitempty` in api.ModelDetails)
    return {"models": [
        {"name": m.name, "model": m.name, "modified_at": MODIFIED_AT, "size": _size(m), "digest": _digest(m),
         "details": {**_details(m), "context_length": CONTEXT_LENGTH,
                     **({"embedding_length": m.embedding_length} if m.embedding_length else {})},
         "capabilities": list(m.capabilities)}
        for m in MODELS
    ]}


@router.get("/api/ps")
async def ps(request: Request) -> dict:
    rows = []
    for name, expires in state_of(request).residency.loaded():
        model = find_model(name)
        rows.append({"name": name, "model": name, "size": _size(model), "digest": _digest(model),
                     "details": _details(model), "expires_at": go_time(expires),
                     "size_vram": 0, "context_length": CONTEXT_LENGTH})
    return {"models": rows}


@router.post("/api/show")
async def show(body: ShowRequest) -> dict:
    name = body.model or body.name or ""
    if not name:
        raise ApiError(400, "model is required")
    model = find_model(name)
    if model is None:
        raise ApiError(404, f"model '{name}' not found")
    info: dict[str, Any] = {"general.architecture": "lab", "general.parameter_count": 100_000,
                            "lab.context_length": CONTEXT_LENGTH}
    if model.embedding_length:
        info["lab.embedding_length"] = model.embedding_length
    return {
        "license": "MIT",
        "modelfile": f"# Modelfile generated by compatlab\nFROM {model.name}\n",
        "parameters": "temperature 0.8\nseed 0",
        "template": "{{ range .Messages }}<|{{ .Role }}|>{{ .Content }}\n{{ end }}<|assistant|>",
        "details": _details(model),
        "model_info": info,
        "capabilities": list(model.capabilities),
        "modified_at": MODIFIED_AT,
    }


def _preamble(state: EngineState, body: _Generation, handler: str) -> tuple[Job, dict[str, Any], float]:
    """What /api/chat and /api/generate check first, in Ollama's order: top_logprobs, the model
    (find), then its options and keep_alive."""
    check_top_logprobs(body.top_logprobs)
    job = find(state, body.model, handler=handler)
    return job, check_options(body.options), check_keep_alive(body.keep_alive)


@router.post("/api/chat")
async def chat(body: ChatRequest, request: Request) -> Response:
    state = state_of(request)
    job, options, keep = _preamble(state, body, "chat")
    if not body.messages:  # no messages: load (or, with keep_alive 0, unload) the model
        return await _load_or_unload(request, job, keep, {"message": {"role": "assistant", "content": ""}})
    conversation = to_conversation(state, job, body, options)
    reply = plan(conversation, job.fault)
    await load(state, job, request)
    scored = Scorer(body.logprobs, body.top_logprobs, conversation.seed)

    def frame(piece) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": piece.text if piece.kind == "content" else ""}
        if piece.kind == "thinking":
            message["thinking"] = piece.text
        if piece.kind == "tool_calls":
            message["tool_calls"] = [_tool_call_json(c, i) for i, c in enumerate(reply.tool_calls)]
        return {"model": job.name, "created_at": now(), "message": message, "done": False, **scored.piece(piece)}

    def final() -> dict:
        return {"model": job.name, "created_at": now(), "message": {"role": "assistant", "content": ""},
                "done": True, "done_reason": reply.done_reason, **job.timing.metrics(reply)}

    if body.stream is not False:
        return _stream(request, job, reply, keep, frame, final)
    async for _ in paced_pieces(reply, Pacer(state.settings, "whole"), job.timing):
        pass  # a non-streamed reply takes as long as a streamed one
    state.residency.keep(job.model.name, keep)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.content)}
    if reply.thinking:
        message["thinking"] = "".join(reply.thinking)
    if reply.tool_calls:
        message["tool_calls"] = [_tool_call_json(c, i) for i, c in enumerate(reply.tool_calls)]
    return JSONResponse({"model": job.name, "created_at": now(), "message": message, "done": True,
                         "done_reason": reply.done_reason, **job.timing.metrics(reply), **scored.whole(reply)})


async def _load_or_unload(request: Request, job: Job, keep: float, empty: dict) -> JSONResponse:
    state = state_of(request)
    if keep == 0:
        state.residency.keep(job.model.name, 0)
        reason = "unload"
    else:
        await load(state, job, request)
        state.residency.keep(job.model.name, keep)
        reason = "load"
    return JSONResponse({"model": job.name, "created_at": now(), **empty, "done": True, "done_reason": reason})


@router.post("/api/generate")
async def generate(body: GenerateRequest, request: Request) -> Response:
    state = state_of(request)
    job, options, keep = _preamble(state, body, "generate")
    if body.raw and (body.template or body.system or body.context):
        raise ApiError(400, "raw mode does not support template, system, or context")
    check_insert(job, body.suffix)
    if not body.prompt:
        return await _load_or_unload(request, job, keep, {"response": ""})
    messages = [ChatMessage(role="system", content=body.system)] if body.system else []
    messages.append(ChatMessage(role="user", content=body.prompt))
    chat_body = ChatRequest(model=body.model, messages=messages, format=body.format, think=body.think)
    conversation = to_conversation(state, job, chat_body, options)
    reply = plan(conversation, job.fault)
    await load(state, job, request)
    scored = Scorer(body.logprobs, body.top_logprobs, conversation.seed)
    # token ids for a follow-up request; Go leaves them out in raw mode (GenerateHandler) and
    # when there are none (`context,omitempty`), server/routes.go and api/types.go@v0.32.15
    context = {} if body.raw or not reply.content else {"context": [zlib.crc32(t.encode()) % 32000 for t in reply.content]}

    def frame(piece) -> dict:
        line: dict[str, Any] = {"model": job.name, "created_at": now(),
                                "response": piece.text if piece.kind == "content" else ""}
        if piece.kind == "thinking":
            line["thinking"] = piece.text
        line["done"] = False
        return {**line, **scored.piece(piece)}

    def final() -> dict:
        return {"model": job.name, "created_at": now(), "response": "", "done": True,
                "done_reason": reply.done_reason, **context, **job.timing.metrics(reply)}

    if body.stream is not False:
        return _stream(request, job, reply, keep, frame, final)
    async for _ in paced_pieces(reply, Pacer(state.settings, "whole"), job.timing):
        pass
    state.residency.keep(job.model.name, keep)
    result: dict[str, Any] = {"model": job.name, "created_at": now(), "response": "".join(reply.content)}
    if reply.thinking:
        result["thinking"] = "".join(reply.thinking)
    result.update({"done": True, "done_reason": reply.done_reason, **context, **job.timing.metrics(reply),
                   **scored.whole(reply)})
    return JSONResponse(result)


def embedding(text: str, size: int, dimensions: int | None = None) -> list[float]:
    """A deterministic unit vector for the text: same text, same vector, on any machine."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    vector = [rng.gauss(0.0, 1.0) for _ in range(size)][: dimensions or size]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    # Round through float32, the precision real engines return.
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in vector]


def embed_inputs(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ApiError(400, "invalid input type")


def check_dimensions(model: LabModel, dimensions: int | None) -> None:
    if dimensions is not None and not 1 <= dimensions <= model.embedding_length:
        raise ApiError(400, f"dimensions must be between 1 and {model.embedding_length}")


@router.post("/api/embed")
async def embed(body: EmbedRequest, request: Request) -> dict:
    state = state_of(request)
    job = find(state, body.model, handler="embed")
    inputs = embed_inputs(body.input)
    check_dimensions(job.model, body.dimensions)
    keep = check_keep_alive(body.keep_alive)
    if not inputs:
        return {"model": job.name, "embeddings": []}
    await load(state, job, request)
    state.residency.keep(job.model.name, keep)
    vectors = [embedding(text, job.model.embedding_length, body.dimensions) for text in inputs]
    metrics = job.timing.metrics(Reply(prompt_tokens=sum(count_tokens(t) for t in inputs)))
    return {"model": job.name, "embeddings": vectors, "total_duration": metrics["total_duration"],
            "load_duration": metrics["load_duration"], "prompt_eval_count": metrics["prompt_eval_count"]}


@router.post("/api/embeddings", include_in_schema=True)
async def legacy_embeddings(body: LegacyEmbeddingsRequest, request: Request) -> dict:
    """The pre-/api/embed endpoint, still routed by Ollama: one prompt, one vector."""
    state = state_of(request)
    job = find(state, body.model, handler="embed")
    await load(state, job, request)
    return {"embedding": embedding(body.prompt or "", job.model.embedding_length)}
