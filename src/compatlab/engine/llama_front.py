"""The llama front: Ollama's native API and /v1 served over a real llama-server child process.

Ollama (v0.30+) runs GGUF models on llama-server and translates both of its APIs onto it; this
front does the same for SmolLM2-135M, so the official `ollama` and `openai` clients see a real
model through Ollama's wire formats. Requests are read and checked by the lab engine's own code
(ollama_wire.py, openai_wire.py, `ollama` profile), then sent to llama-server's /v1; token counts and
durations in the replies are llama-server's own `usage` and `timings`.
"""

import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from compatlab import __version__
from compatlab.engine import ollama_wire, openai_wire
from compatlab.engine.app import add_error_handling
from compatlab.engine.catalog import LabModel, normalize_name
from compatlab.engine.errors import ApiError, openai_error_body
from compatlab.engine.lab_model import Conversation
from compatlab.engine.profiles import PROFILES
from compatlab.engine.runtime import EngineState, go_metrics
from compatlab.engine.serving import Job, counted
from compatlab.engine.settings import EngineSettings
from compatlab.llama import MODEL_NAME

# llama-server (cpp-httplib) closes a connection idle for 5 s (its `Keep-Alive: timeout=5`), and
# httpx reuses one for up to 5 s by default: a request sent at that moment can meet a socket
# being closed, with no reply. Dropping idle connections well before the server does leaves no
# such moment.
KEEPALIVE_EXPIRY = 2.0
PROFILE = PROFILES["ollama"]  # the wire shapes of current Ollama, as the lab engine renders them
SMOLLM2 = LabModel(MODEL_NAME, "llama", ("completion", "tools"), "135M")
# Sampling options each API names, and llama-server's name for them.
NATIVE_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
                   "typical_p": "typical_p", "repeat_penalty": "repeat_penalty", "repeat_last_n": "repeat_last_n",
                   "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty"}
OPENAI_SAMPLING = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


@dataclass
class Finish:
    """How llama-server ended one reply, with its own counts and timings."""

    reason: str = "stop"  # stop | length | tool_calls
    tool_calls: list[dict] = field(default_factory=list)  # {"id", "name", "arguments": JSON text}
    usage: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def metrics(self, started: float) -> dict:
        """Ollama's done-frame durations (ns), from llama-server's timings (ms); no
        load_duration, which Go leaves out when it is 0: llama-server loads the model once, at start."""
        return go_metrics({"total_duration": int((time.perf_counter() - started) * 1e9),
                           "prompt_eval_count": self.usage.get("prompt_tokens", 0),
                           "prompt_eval_duration": int(self.timings.get("prompt_ms", 0) * 1e6),
                           "eval_count": self.usage.get("completion_tokens", 0),
                           "eval_duration": int(self.timings.get("predicted_ms", 0) * 1e6)})


@dataclass
class Front:
    """What the front shares between requests."""

    llama_url: str
    client: httpx.AsyncClient
    state: EngineState
    props: dict | None = None  # what llama-server says of itself, read once


def front_of(request: Request) -> Front:
    return request.app.state.front


def job_for(name: str, capability: str = "completion") -> Job:
    if not name:
        raise ApiError(400, "model is required")
    if normalize_name(name.strip()) != MODEL_NAME:
        raise ApiError(404, f"model '{name}' not found")
    if capability not in SMOLLM2.capabilities:
        raise ApiError(400, f'"{MODEL_NAME}" does not support {capability}')
    return Job(SMOLLM2, name)  # no fault: a real model misbehaves by itself


# ---------------------------------------------------------------- to llama-server


def llama_request(conversation: Conversation, sampling: dict) -> dict:
    """An OpenAI chat request for llama-server, from the conversation both APIs read into."""
    messages, call_ids = [], {}
    for turn, m in enumerate(conversation.messages):
        entry: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            call_ids = {c.name: f"call_{turn}_{i}" for i, c in enumerate(m.tool_calls)}
            entry["tool_calls"] = [{"id": call_ids[c.name], "type": "function",
                                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                                   for c in m.tool_calls]
        if m.role == "tool" and m.tool_name in call_ids:
            entry["tool_call_id"] = call_ids[m.tool_name]
        messages.append(entry)
    body: dict[str, Any] = {"messages": messages, "seed": conversation.seed, **sampling}
    if conversation.tools:
        body["tools"] = [{"type": "function", "function": spec} for spec in conversation.tools]
        choice = conversation.tool_choice
        body["tool_choice"] = choice if choice in ("auto", "none", "required") else \
            {"type": "function", "function": {"name": choice}}
    if conversation.format == "json":
        body["response_format"] = {"type": "json_object"}
    elif isinstance(conversation.format, dict):
        body["response_format"] = {"type": "json_schema", "json_schema": {"schema": conversation.format}}
    if conversation.num_predict is not None and conversation.num_predict >= 0:
        body["max_tokens"] = conversation.num_predict
    if conversation.stop:
        body["stop"] = list(conversation.stop)
    return body


def _error_message(body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        return error["message"] if isinstance(error, dict) else str(error)
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")[:500] or "llama-server gave no reason"


async def open_llama(front: Front, path: str, body: dict) -> httpx.Response:
    """Start a streamed request to llama-server; its refusals become ours, with their status."""
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    request = front.client.build_request("POST", front.llama_url + path, json=body)
    try:
        response = await front.client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise _runner_died(exc) from None
    if response.status_code != 200:
        message = _error_message(await response.aread())
        await response.aclose()
        raise ApiError(response.status_code if response.status_code < 500 else 500, message)
    return response


def _runner_died(exc: Exception) -> ApiError:
    return ApiError(500, f"llama runner process has terminated: {type(exc).__name__}")  # Ollama's words


async def from_llama(response: httpx.Response) -> AsyncIterator[str | Finish]:
    """llama-server's SSE stream as text pieces, then one Finish. Tool-call fragments are joined
    by index, so callers get whole calls (Ollama hands them over whole too). Closes the response
    however it ends: a client gone mid-stream cancels llama-server's work too."""
    finish, calls = Finish(), {}
    try:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise ApiError(500, _error_message(line[6:].encode()))
            finish.usage = event.get("usage") or finish.usage
            finish.timings = event.get("timings") or finish.timings
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                text = delta.get("content") or choice.get("text")  # chat or text completion
                if text:
                    yield text
                for call in delta.get("tool_calls") or []:
                    whole = calls.setdefault(call.get("index", 0), {"id": "", "name": "", "arguments": ""})
                    function = call.get("function") or {}
                    whole["id"] = call.get("id") or whole["id"]
                    whole["name"] += function.get("name") or ""
                    whole["arguments"] += function.get("arguments") or ""
                finish.reason = choice.get("finish_reason") or finish.reason
        finish.tool_calls = [calls[i] for i in sorted(calls)]
        yield finish
    except httpx.HTTPError as exc:
        raise _runner_died(exc) from None
    finally:
        with anyio.CancelScope(shield=True):  # closing must finish even when we are being cancelled
            await response.aclose()


async def whole_reply(first: str | Finish, pieces: AsyncIterator[str | Finish]) -> tuple[str, Finish]:
    """A reply that is not streamed: all of its text, and how it ended."""
    texts = [first]
    async for piece in pieces:
        texts.append(piece)
    return "".join(texts[:-1]), texts[-1]


def parsed_arguments(call: dict) -> dict | str:
    try:
        value = json.loads(call["arguments"] or "{}")
    except json.JSONDecodeError:
        return call["arguments"]  # kept as the model wrote it rather than lost
    return value if isinstance(value, dict) else call["arguments"]


# ---------------------------------------------------------------- Ollama's native API


def _native_sampling(options: dict) -> dict:
    return {ours: options[theirs] for theirs, ours in NATIVE_SAMPLING.items() if theirs in options}


def _native_calls(finish: Finish) -> list[dict]:
    return [{"id": c["id"], "function": {"index": i, "name": c["name"], "arguments": parsed_arguments(c)}}
            for i, c in enumerate(finish.tool_calls)]


async def _native_reply(request: Request, job: Job, path: str, llama_body: dict, key: str, stream: bool) -> Response:
    """/api/chat (key "message") and /api/generate (key "response") from one llama-server stream."""
    front, started = front_of(request), time.perf_counter()

    def frame(text: str) -> dict:
        body = {"role": "assistant", "content": text} if key == "message" else text
        return {"model": job.name, "created_at": ollama_wire.now(), key: body, "done": False}

    def final(finish: Finish, text: str = "") -> dict:
        value = frame(text)
        if finish.tool_calls and key == "message":
            value["message"]["tool_calls"] = _native_calls(finish)
        reason = "length" if finish.reason == "length" else "stop"
        return {**value, "done": True, "done_reason": reason, **finish.metrics(started)}

    pieces = from_llama(await open_llama(front, path, llama_body))  # refusals keep their HTTP status
    first = await anext(pieces)
    if not stream:
        text, finish = await whole_reply(first, pieces)
        return JSONResponse(final(finish, text))

    async def lines() -> AsyncIterator[bytes]:
        piece = first
        try:
            while not isinstance(piece, Finish):
                yield ollama_wire.ndjson_line(frame(piece))
                piece = await anext(pieces)
            yield ollama_wire.ndjson_line(final(piece))
        except ApiError as exc:  # after HTTP 200: in band, as Ollama does
            yield ollama_wire.ndjson_line({"error": exc.message})

    return StreamingResponse(counted(front.state, lines()), media_type=ollama_wire.NDJSON)


def _native_routes(app: FastAPI) -> None:
    @app.api_route("/", methods=["GET", "HEAD"], response_class=PlainTextResponse, include_in_schema=False)
    async def root() -> str:
        return "Ollama is running"

    @app.api_route("/api/version", methods=["GET", "HEAD"])
    async def version() -> dict:
        return {"version": PROFILE.version}

    @app.api_route("/api/tags", methods=["GET", "HEAD"])
    async def tags(request: Request) -> dict:
        return {"models": [await _model_entry(front_of(request))]}

    @app.get("/api/ps")
    async def ps(request: Request) -> dict:
        entry = await _model_entry(front_of(request))
        props = await _props(front_of(request))
        return {"models": [{**entry, "expires_at": "2318-08-04T00:00:00Z",  # resident for as long as it runs
                            "size_vram": 0, "context_length": props["n_ctx"]}]}

    @app.post("/api/show")
    async def show(body: ollama_wire.ShowRequest, request: Request) -> dict:
        job_for(body.model or body.name or "")
        front = front_of(request)
        entry, props = await _model_entry(front), await _props(front)
        return {"license": "Apache-2.0", "modelfile": f"# served by compatlab over llama-server\nFROM {MODEL_NAME}\n",
                "parameters": "", "template": props["chat_template"], "details": entry["details"],
                "model_info": {"general.architecture": "llama", "general.parameter_count": props["n_params"],
                               "llama.context_length": props["n_ctx_train"]},
                "capabilities": list(SMOLLM2.capabilities), "modified_at": ollama_wire.MODIFIED_AT}

    @app.post("/api/chat")
    async def chat(body: ollama_wire.ChatRequest, request: Request) -> Response:
        job = job_for(body.model)
        options = ollama_wire.check_options(body.options)
        ollama_wire.check_keep_alive(body.keep_alive)
        if not body.messages:  # a load request: the model is always loaded here
            done_reason = "unload" if ollama_wire.check_keep_alive(body.keep_alive) == 0 else "load"
            return JSONResponse({"model": job.name, "created_at": ollama_wire.now(),
                                 "message": {"role": "assistant", "content": ""}, "done": True,
                                 "done_reason": done_reason})
        conversation = ollama_wire.to_conversation(front_of(request).state, job, body, options)
        llama_body = llama_request(conversation, _native_sampling(options))
        return await _native_reply(request, job, "/v1/chat/completions", llama_body, "message", body.stream is not False)

    @app.post("/api/generate")
    async def generate(body: ollama_wire.GenerateRequest, request: Request) -> Response:
        job = job_for(body.model)
        options = ollama_wire.check_options(body.options)
        keep = ollama_wire.check_keep_alive(body.keep_alive)
        if body.raw and (body.template or body.system or body.context):
            raise ApiError(400, "raw mode does not support template, system, or context")
        if not body.prompt:
            return JSONResponse({"model": job.name, "created_at": ollama_wire.now(), "response": "", "done": True,
                                 "done_reason": "unload" if keep == 0 else "load"})
        messages = [ollama_wire.ChatMessage(role="system", content=body.system)] if body.system else []
        messages.append(ollama_wire.ChatMessage(role="user", content=body.prompt))
        chat_body = ollama_wire.ChatRequest(model=body.model, messages=messages, format=body.format, think=body.think)
        conversation = ollama_wire.to_conversation(front_of(request).state, job, chat_body, options)
        llama_body = llama_request(conversation, _native_sampling(options))
        path = "/v1/chat/completions"
        if body.raw:  # no template: the prompt goes to the model as it is
            path = "/v1/completions"
            llama_body = {k: v for k, v in llama_body.items() if k != "messages"} | {"prompt": body.prompt}
        return await _native_reply(request, job, path, llama_body, "response", body.stream is not False)

    @app.post("/api/embed")
    async def embed(body: ollama_wire.EmbedRequest) -> dict:
        job_for(body.model, "embedding")
        return {}  # not reached: SmolLM2 does not embed

    @app.post("/api/embeddings")
    async def legacy_embeddings(body: ollama_wire.LegacyEmbeddingsRequest) -> dict:
        job_for(body.model, "embedding")
        return {}


async def _props(front: Front) -> dict:
    """What llama-server says about itself and its model (cached: it never changes)."""
    if front.props is None:
        props = (await front.client.get(front.llama_url + "/props")).json()
        meta = (await front.client.get(front.llama_url + "/v1/models")).json()["data"][0].get("meta", {})
        front.props = {"build": props.get("build_info", ""), "chat_template": props.get("chat_template", ""),
                       "n_ctx": props.get("default_generation_settings", {}).get("n_ctx", 0),
                       "n_params": meta.get("n_params", 0), "n_ctx_train": meta.get("n_ctx_train", 0),
                       "size": meta.get("size", 0)}
    return front.props


async def _model_entry(front: Front) -> dict:
    props = await _props(front)
    return {"name": MODEL_NAME, "model": MODEL_NAME, "modified_at": ollama_wire.MODIFIED_AT, "size": props["size"],
            "digest": f"{props['size']:064x}",  # no registry digest for a file from a wheel
            "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                        "parameter_size": "135M", "quantization_level": "Q4_1"},
            "capabilities": list(SMOLLM2.capabilities)}


# ---------------------------------------------------------------- /v1, as Ollama's own layer renders it


def _openai_sampling(body: openai_wire.ChatCompletionRequest) -> dict:
    return {name: getattr(body, name) for name in OPENAI_SAMPLING if getattr(body, name) is not None}


def _openai_calls(finish: Finish) -> list[dict]:
    return [{"id": c["id"], "index": i, "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for i, c in enumerate(finish.tool_calls)]


def _usage(finish: Finish) -> dict:
    prompt, completion = finish.usage.get("prompt_tokens", 0), finish.usage.get("completion_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _openai_routes(app: FastAPI) -> None:
    @app.post("/v1/chat/completions")
    async def chat_completions(body: openai_wire.ChatCompletionRequest, request: Request) -> Response:
        front = front_of(request)
        job = job_for(body.model)
        conversation = openai_wire.to_conversation(request, job, body)
        llama_body = llama_request(conversation, _openai_sampling(body))
        pieces = from_llama(await open_llama(front, "/v1/chat/completions", llama_body))
        first = await anext(pieces)
        head = {"id": f"chatcmpl-{random.randrange(999)}", "created": int(time.time()), "model": body.model,
                "system_fingerprint": PROFILE.system_fingerprint}
        if not body.stream:
            text, finish = await whole_reply(first, pieces)
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if finish.tool_calls:
                message["tool_calls"] = _openai_calls(finish)
            return JSONResponse({**head, "object": "chat.completion",
                                 "choices": [{"index": 0, "message": message, "finish_reason": finish.reason}],
                                 "usage": _usage(finish)})
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        head["object"] = "chat.completion.chunk"

        def chunk(delta: dict, finish_reason: str | None = None, **extra) -> bytes:
            return openai_wire.sse_event({**head, "choices": [{"index": 0, "delta": delta,
                                                              "finish_reason": finish_reason}], **extra})

        async def events() -> AsyncIterator[bytes]:
            piece, role = first, {"role": "assistant"}
            try:
                while not isinstance(piece, Finish):
                    yield chunk({**role, "content": piece})
                    role, piece = {}, await anext(pieces)
                if piece.tool_calls:
                    yield chunk({**role, "content": "", "tool_calls": _openai_calls(piece)})
                yield chunk({}, piece.reason)
                if include_usage:
                    yield openai_wire.sse_event({**head, "choices": [], "usage": _usage(piece)})
                yield openai_wire.sse_event("[DONE]")
            except ApiError as exc:  # after HTTP 200: an error event the SDKs raise on
                yield openai_wire.sse_event(openai_error_body(PROFILE, exc.status, exc.message))

        return StreamingResponse(counted(front.state, events()), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(body: openai_wire.CompletionRequest, request: Request) -> Response:
        """A bare prompt, no chat template: llama-server's own /v1/completions, in Ollama's shape."""
        front = front_of(request)
        job_for(body.model)
        openai_wire.validate_params(PROFILE, body)
        llama_body = {"prompt": body.prompt, "seed": body.seed if body.seed is not None else front.state.settings.seed,
                      **_openai_sampling(body)}
        if body.max_tokens is not None:
            llama_body["max_tokens"] = body.max_tokens
        if body.stop:
            llama_body["stop"] = list(openai_wire.stops(body.stop))
        pieces = from_llama(await open_llama(front, "/v1/completions", llama_body))
        first = await anext(pieces)
        head = {"id": f"cmpl-{random.randrange(999)}", "object": "text_completion", "created": int(time.time()),
                "model": body.model, "system_fingerprint": PROFILE.system_fingerprint}

        def choice(text: str, finish_reason: str | None) -> dict:
            return {**head, "choices": [{"text": text, "index": 0, "finish_reason": finish_reason}]}

        if not body.stream:
            text, finish = await whole_reply(first, pieces)
            reply = choice(text, finish.reason)
            reply["choices"][0]["logprobs"] = None
            return JSONResponse({**reply, "usage": _usage(finish)})
        include_usage = bool((body.stream_options or {}).get("include_usage"))

        async def events() -> AsyncIterator[bytes]:
            piece = first
            try:
                while not isinstance(piece, Finish):
                    yield openai_wire.sse_event(choice(piece, None))
                    piece = await anext(pieces)
                yield openai_wire.sse_event(choice("", piece.reason))
                if include_usage:
                    yield openai_wire.sse_event({**head, "choices": [], "usage": _usage(piece)})
                yield openai_wire.sse_event("[DONE]")
            except ApiError as exc:
                yield openai_wire.sse_event(openai_error_body(PROFILE, exc.status, exc.message))

        return StreamingResponse(counted(front.state, events()), media_type="text/event-stream")

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [_model_card()]}

    @app.get("/v1/models/{model:path}")
    async def retrieve_model(model: str) -> dict:
        job_for(model)
        return _model_card()

    @app.post("/v1/embeddings")
    async def embeddings(body: openai_wire.EmbeddingsRequest) -> dict:
        job_for(body.model, "embedding")
        return {}


def _model_card() -> dict:
    return {"id": MODEL_NAME, "object": "model", "created": openai_wire.CREATED, "owned_by": PROFILE.owned_by}


# ---------------------------------------------------------------- the app


def create_front(llama_url: str, llama_build: str = "") -> FastAPI:
    app = FastAPI(title="compatlab llama front", version=__version__,
                  description=f"Ollama's API and /v1 over llama-server ({llama_url}) with {MODEL_NAME}.")
    settings = EngineSettings(profile="ollama")
    state = EngineState(settings=settings, profile=PROFILE)
    # One pooled client: generation can take minutes, so only connecting has a short limit.
    client = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=5.0),
                               limits=httpx.Limits(max_connections=256, max_keepalive_connections=64,
                                                   keepalive_expiry=KEEPALIVE_EXPIRY))
    app.state.front = Front(llama_url, client, state)
    app.state.engine = state
    _native_routes(app)
    _openai_routes(app)
    add_error_handling(app, PROFILE, settings.max_body_bytes)

    @app.get("/lab/status", tags=["lab"])
    async def lab_status() -> dict:
        """Tells this front apart from a real Ollama and from the lab engine; names llama-server."""
        return {"engine": "compatlab", "version": __version__, "profile": PROFILE.name, "backend": "llama.cpp",
                "llama_server": llama_url, "llama_build": llama_build, "model": MODEL_NAME,
                "active_streams": state.active_streams}

    return app


def serve_front(host: str, port: int, llama_port: int = 0) -> int:
    """`compatlab engine serve --backend llama`: llama-server in a child process, the front here."""
    import sys

    from compatlab import llama
    from compatlab.engine.server import serve_app

    try:
        child = llama.LlamaServer(port=llama_port).start()
    except (llama.RealTierMissing, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        build = httpx.get(child.url + "/props", timeout=5).json().get("build_info", "")
        print(f"llama-server {build} with {MODEL_NAME} at {child.url}", flush=True)
        return serve_app(create_front(child.url, build), host, port)
    finally:
        child.stop()
