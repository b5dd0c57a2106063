"""The OpenAI-compatible /v1 routes. What goes on the wire (request models, checks, each
profile's chunks and errors) is openai_wire.py."""

import base64
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from compatlab.engine.catalog import MODELS, find_model
from compatlab.engine.embeddings import check_dimensions, embed_inputs, embedding
from compatlab.engine.errors import ApiError
from compatlab.engine.lab_model import Conversation, Message
from compatlab.engine.logprobs import Scorer
from compatlab.engine.ollama_wire import check_top_logprobs
from compatlab.engine.openai_wire import (
    ChatCompletionRequest, CompletionRequest, EmbeddingsRequest, chat_completion, chat_stream, completion_id,
    model_card, numbered, replies_for, sse_event, sse_fault, stops, timings, to_conversation, usage, validate_params,
)
from compatlab.engine.runtime import Pacer, paced_pieces
from compatlab.engine.serving import check_insert, counted, fault_position, find, load, plan, state_of
from compatlab.engine.tokens import count_tokens

router = APIRouter(prefix="/v1", tags=["openai"])


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    state = state_of(request)
    if state.profile.native_api:  # Ollama's /v1 goes through ChatHandler, which checks the range first
        check_top_logprobs(body.top_logprobs)
    job = find(state, body.model, handler="chat")
    conversation = to_conversation(request, job, body)
    replies = replies_for(request, job, conversation, body.n)
    wanted = bool(body.logprobs) and state.profile.logprobs
    # the first choice scores as /api/chat would, so both APIs give the same numbers
    scorers = [Scorer(wanted, body.top_logprobs, conversation.seed if index == 0 else f"{conversation.seed}:{index}")
               for index in range(len(replies))]
    await load(state, job, request)
    if body.stream:
        options = body.stream_options or {}
        stream = chat_stream(request, job, body.model, replies, options, bool(conversation.tools), scorers)
        return StreamingResponse(counted(state, stream), media_type="text/event-stream")
    for reply in replies:
        async for _ in paced_pieces(reply, Pacer(state.settings, "whole"), job.timing):
            pass
    return JSONResponse(chat_completion(state.profile, job, body.model, replies, scorers))


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request) -> Response:
    state = state_of(request)
    profile = state.profile
    if profile.native_api and (body.logprobs or 0) > 0:  # it becomes GenerateHandler's top_logprobs
        check_top_logprobs(body.logprobs)
    job = find(state, body.model, handler="generate")
    if profile.native_api:  # FromCompleteRequest passes suffix to the generate handler
        check_insert(job, body.suffix)
    validate_params(profile, body)
    conversation = Conversation(
        family=job.model.family, messages=(Message("user", body.prompt),),
        seed=body.seed if body.seed is not None else state.settings.seed,
        num_predict=body.max_tokens, stop=stops(body.stop))
    reply = plan(conversation)
    await load(state, job, request)
    head: dict[str, Any] = {"id": completion_id(profile, "cmpl-"), "object": "text_completion",
                            "created": int(time.time()), "model": body.model}
    if profile.system_fingerprint:
        head["system_fingerprint"] = profile.system_fingerprint

    # Ollama's FromCompleteRequest reads logprobs (an int) as "logprobs, with that many
    # alternatives", and answers in its chat format, {"content": [api.Logprob, …]}
    scorer = Scorer(bool(body.logprobs) and profile.logprobs and profile.native_api, body.logprobs, conversation.seed)

    def scored(tokens: list[str], null: bool) -> dict:
        found = scorer.tokens(tokens)
        return {"logprobs": {"content": found["logprobs"]}} if found else {"logprobs": None} if null else {}

    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage")) and profile.stream_usage
        zeroed = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        zero = {"usage": zeroed} if include_usage and profile.completion_zero_usage else {}

        def choice(text: str, finish_reason: str | None) -> dict:
            tokens = [text] if text else []
            return {"choices": [{"text": text, "index": 0, **scored(tokens, profile.completion_logprobs_in_stream),
                                 "finish_reason": finish_reason}], **zero}

        async def events() -> AsyncIterator[bytes]:
            pacer = Pacer(state.settings, f"cmpl:{reply.prompt_tokens}:{reply.eval_count}")
            strike = fault_position(len(reply.content)) if job.fault.wire else -1
            async for sent, piece in numbered(paced_pieces(reply, pacer, job.timing)):
                yield sse_event({**head, **choice(piece.text, None)})
                if sent == strike:
                    async for data in sse_fault(profile, job, head, 0):
                        yield data
                    if job.fault.ends_stream:
                        return
            finish = {**head, **choice("", reply.done_reason)}
            if profile.completion_usage_on_finish:
                finish["usage"] = usage([reply])
            if profile.timings:
                finish["timings"] = timings(job, [reply])
            yield sse_event(finish)
            if include_usage and not profile.completion_usage_on_finish:
                yield sse_event({**head, "choices": [], "usage": usage([reply])})
            yield sse_event("[DONE]")

        return StreamingResponse(counted(state, events()), media_type="text/event-stream")
    async for _ in paced_pieces(reply, Pacer(state.settings, "whole"), job.timing):
        pass
    # logprobs null, as OpenAI, llama-server and vLLM send it; Ollama's Go struct leaves it out
    result = {**head, "choices": [{"text": "".join(reply.content), "index": 0,
                                   **scored(list(reply.content), not profile.native_api),
                                   "finish_reason": reply.done_reason}], "usage": usage([reply])}
    if profile.timings:
        result["timings"] = timings(job, [reply])
    return JSONResponse(result)


@router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request) -> dict:
    state = state_of(request)
    job = find(state, body.model, handler="embed")
    if body.encoding_format not in (None, "float", "base64"):
        raise ApiError(400, f"Invalid value for 'encoding_format' = {body.encoding_format}. "
                            "Supported values are: ['float', 'base64'].", "encoding_format")
    inputs = embed_inputs(body.input)
    if not inputs:
        raise ApiError(400, "invalid input: expected a non-empty string or list of strings", "input")
    check_dimensions(job.model, body.dimensions)
    await load(state, job, request)
    data = []
    for index, text in enumerate(inputs):
        vector = embedding(text, job.model.embedding_length, body.dimensions)
        if body.encoding_format == "base64":
            # The OpenAI wire format: little-endian float32, packed explicitly ("<"), then base64.
            packed: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        else:
            packed = vector
        data.append({"object": "embedding", "embedding": packed, "index": index})
    tokens = sum(count_tokens(t) for t in inputs)
    return {"object": "list", "data": data, "model": body.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


@router.get("/models")
async def list_models(request: Request) -> dict:
    profile = state_of(request).profile
    return {"object": "list", "data": [model_card(profile, m.name) for m in MODELS]}


@router.get("/models/{model:path}")
async def retrieve_model(model: str, request: Request) -> dict:
    profile = state_of(request).profile
    found = find_model(model)
    if found is None:
        raise ApiError(404, f"model '{model}' not found")
    return model_card(profile, model)

