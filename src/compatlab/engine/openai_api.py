"""The OpenAI-compatible /v1 routes. What goes on the wire (request models, checks, each
profile's chunks and errors) is openai_wire.py."""

import base64
import struct
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
    ChatCompletionRequest, CompletionRequest, EmbeddingsRequest, TextCompletion, chat_completion, chat_stream,
    model_card, replies_for, stops, to_conversation, validate_params,
)
from compatlab.engine.runtime import Pacer, paced_pieces
from compatlab.engine.serving import check_insert, counted, find, load, plan, state_of
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
    writer = TextCompletion(profile, job, body, reply, conversation.seed)
    if body.stream:
        return StreamingResponse(counted(state, writer.events(state.settings)), media_type="text/event-stream")
    async for _ in paced_pieces(reply, Pacer(state.settings, "whole"), job.timing):
        pass
    return JSONResponse(writer.whole())


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

