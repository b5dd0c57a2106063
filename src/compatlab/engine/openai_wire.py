"""The OpenAI-compatible /v1 API on the wire: the request models and their checks, the
translation of a request into the lab's conversation, and how each profile's engine writes its
replies, chunks, errors and faults (SSE). The routes are in openai_api.py; llama_front.py uses
these for its /v1.
"""

import base64
import json
import math
import random
import string
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict

from compatlab.engine.errors import ApiError, openai_error_body
from compatlab.engine.lab_model import Conversation, Message, Reply, ToolCall
from compatlab.engine.logprobs import Scorer
from compatlab.engine.profiles import Profile
from compatlab.engine.runtime import Pacer, Piece, paced_pieces
from compatlab.engine.serving import MID_STREAM_ERROR, DropConnection, Job, fault_position, plan, state_of

ROLES = ("system", "developer", "user", "assistant", "tool")
CREATED = 1761987600  # ollama_wire.MODIFIED_AT (2025-11-01T09:00:00Z) as a Unix time


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # vLLM-style extra parameters are accepted


class ChatCompletionMessage(_Open):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class _SamplingRequest(_Open):
    """What chat and text completions share: streaming and the sampling parameters."""

    model: str
    stream: bool | None = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    n: int | None = None
    best_of: int | None = None
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None


class ChatCompletionRequest(_SamplingRequest):
    messages: list[ChatCompletionMessage]
    max_completion_tokens: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None


class CompletionRequest(_SamplingRequest):
    prompt: str
    suffix: str | None = None
    logprobs: int | None = None  # how many alternatives per token (OpenAI's legacy completions)


class EmbeddingsRequest(_Open):
    model: str
    input: str | list[str]
    encoding_format: str | None = "float"
    dimensions: int | None = None


# ---------------------------------------------------------------- request checks


def validate_params(profile: Profile, body: _SamplingRequest) -> None:
    """The OpenAI spec's ranges. Checked only by profiles whose engines check them."""
    if body.stream_options is not None and not body.stream:
        raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       "stream_options")
    if not profile.validates_params:
        return
    # OpenAI's spec gives top_p [0, 1] (openapi.yaml, CreateChatCompletionRequest); (0, 1] is
    # vLLM's own rule (vllm/sampling_params.py _verify_args: "top_p must be in (0, 1]").
    ranges = (("temperature", 0, 2, False), ("top_p", 0, 1, profile.top_p_above_zero),
              ("frequency_penalty", -2, 2, False), ("presence_penalty", -2, 2, False))
    for name, low, high, open_low in ranges:
        value = getattr(body, name)
        if value is None:
            continue
        if not math.isfinite(value) or value > high or value < low or (open_low and value <= low):
            bound = f"greater than {low}" if open_low else f"at least {low}"
            raise ApiError(400, f"Invalid '{name}': {value}. It must be {bound} and at most {high}.", name)
    n = 1 if body.n is None else body.n
    if n < 1:
        raise ApiError(400, f"Invalid 'n': {n}. It must be at least 1.", "n")
    if n > 16:
        raise ApiError(400, f"Invalid 'n': {n}. The lab engine returns at most 16 choices.", "n")
    if body.best_of is not None and body.best_of < n:
        raise ApiError(400, f"Invalid 'best_of': {body.best_of}. It must be at least n ({n}).", "best_of")
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(body, name, None)
        if value is not None and value < 0:
            raise ApiError(400, f"Invalid '{name}': {value}. It must be at least 0.", name)


def _text(profile: Profile, content: str | list[dict[str, Any]] | None) -> str:
    """Content may be a string or a list of parts; the lab model reads the text parts, and the
    images only as far as the profile's engine checks them before a model sees them."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url" and profile.image_types:
            _check_image(profile, part.get("image_url"))
        elif kind not in ("image_url", "input_audio", "file"):
            raise ApiError(400, "invalid message format", "messages")
    return "\n".join(texts)


def _check_image(profile: Profile, image: Any) -> None:
    """Ollama decodes an image part itself: a base64 data URI of a type it knows, or a 400.
    openai/openai.go: decodeImageURL@v0.32.15 (which also takes a blank "data:;base64,"),
    FromChatRequest@v0.4.7 (where bad base64 is "invalid message format")."""
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise ApiError(400, "invalid message format", "messages")
    if profile.refuses_image_links and url.startswith(("http://", "https://")):
        raise ApiError(400, "image URLs are not currently supported, please use base64 encoded data instead", "messages")
    prefixes = [f"data:image/{kind};base64," for kind in profile.image_types]
    prefixes += ["data:;base64,"] if profile.refuses_image_links else []
    data = next((url[len(prefix):] for prefix in prefixes if url.startswith(prefix)), None)
    if data is None:
        raise ApiError(400, "invalid image input", "messages")
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        raise ApiError(400, "invalid image input" if profile.refuses_image_links else "invalid message format",
                       "messages") from None


def _messages(profile: Profile, body: ChatCompletionRequest) -> tuple[Message, ...]:
    if not body.messages:
        raise ApiError(400, "[] is too short - 'messages'", "messages")
    names_by_id: dict[str, str] = {}
    messages = []
    for m in body.messages:
        role = m.role.lower()
        if role not in ROLES:
            raise ApiError(400, f"Invalid value: '{m.role}'. Supported values are: {', '.join(ROLES)}.",
                           "messages")
        calls = []
        for call in m.tool_calls or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise ApiError(400, "invalid tool call: function.name is required", "messages")
            arguments = function.get("arguments") or "{}"
            try:
                parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
            except json.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, dict):
                raise ApiError(400, "invalid tool call arguments", "messages")
            calls.append(ToolCall("", function["name"], parsed))
            if isinstance(call.get("id"), str):
                names_by_id[call["id"]] = function["name"]
        tool_name = names_by_id.get(m.tool_call_id or "", m.name or "") if role == "tool" else ""
        messages.append(Message("system" if role == "developer" else role, _text(profile, m.content), tuple(calls),
                                tool_name))
    return tuple(messages)


def _tools(body: ChatCompletionRequest) -> tuple[dict, ...]:
    tools = []
    for tool in body.tools or []:
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict) \
                or not isinstance(function.get("name"), str):
            raise ApiError(400, "invalid tool: expected {'type': 'function', 'function': {'name': ...}}", "tools")
        if function.get("parameters") is not None and not isinstance(function["parameters"], dict):
            raise ApiError(400, "invalid tool: function.parameters must be a JSON Schema object", "tools")
        tools.append(function)
    return tuple(tools)


def _tool_choice(profile: Profile, choice: str | dict | None) -> str | None:
    if not profile.honours_tool_choice or choice is None:
        return "auto"  # Ollama accepts tool_choice and drops it (issues #8421, #17921)
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise ApiError(400, f"Invalid value for 'tool_choice': '{choice}'.", "tool_choice")
        return choice
    name = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
    if not isinstance(name, str):
        raise ApiError(400, "Invalid 'tool_choice': expected {'type': 'function', 'function': {'name': ...}}.",
                       "tool_choice")
    return name


def _format(profile: Profile, body: ChatCompletionRequest) -> str | dict | None:
    extra = body.model_extra or {}
    if profile.structured_outputs:
        # vLLM's own keys: `structured_outputs` (v0.12+) and `guided_json` (before it).
        structured = extra.get("structured_outputs")
        if isinstance(structured, dict) and isinstance(structured.get("json"), dict):
            return structured["json"]
        if isinstance(extra.get("guided_json"), dict):
            return extra["guided_json"]
    fmt = body.response_format
    if fmt is None:
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        # llama-server also takes a schema right beside the type
        if profile.schema_beside_json_object and isinstance(fmt.get("schema"), dict):
            return fmt["schema"]
        return "json"
    if kind == "json_schema":
        if not profile.honours_json_schema:
            return None  # Ollama before v0.5.0: an unknown type, silently no constraint
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else fmt.get("schema")
        if not isinstance(schema, dict):
            raise ApiError(400, "response_format json_schema needs a 'json_schema.schema' object", "response_format")
        return schema
    if kind == "text":
        return None
    if profile.ignores_unknown_response_format:
        return None
    raise ApiError(400, f"Invalid value for 'response_format.type': {kind!r}. "
                        "Supported values are: 'text', 'json_object' and 'json_schema'.", "response_format")


def stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


def to_conversation(request: Request, job: Job, body: ChatCompletionRequest) -> Conversation:
    state = state_of(request)
    profile = state.profile
    validate_params(profile, body)
    think = job.model.thinks
    efforts = profile.reasoning_efforts
    effort = body.reasoning_effort if efforts is not None else None
    if effort is not None and efforts and effort not in efforts:
        # thinkFromReasoningEffort (openai/openai.go@v0.32.15), before the model is asked
        listed = ", ".join(f'"{value}"' for value in efforts[1:])
        raise ApiError(400, f'invalid reasoning value: "{effort}" (must be {listed}, or "none")', "reasoning_effort")
    if effort is not None:
        if effort == "none":
            think = False
        elif not job.model.thinks and efforts:  # Ollama: a model without the thinking capability
            raise ApiError(400, f'"{job.model.name}" does not support thinking', "reasoning_effort")
    limit = body.max_tokens
    if limit is None and profile.honours_max_completion_tokens:
        limit = body.max_completion_tokens
    return Conversation(
        family=job.model.family,
        messages=_messages(profile, body),
        seed=body.seed if body.seed is not None else state.settings.seed,
        tools=_tools(body),
        tool_choice=_tool_choice(profile, body.tool_choice),
        format=_format(profile, body),
        think=think,
        num_predict=limit,
        stop=stops(body.stop),
    )


# ---------------------------------------------------------------- response pieces


def completion_id(profile: Profile, prefix: str = "chatcmpl-") -> str:
    if profile.id_style == "llamacpp":
        return prefix + "".join(random.choices(string.ascii_letters + string.digits, k=32))
    if profile.id_style == "vllm":
        return prefix + uuid.uuid4().hex
    return f"{prefix}{random.randrange(999)}"  # Ollama: chatcmpl-0 … chatcmpl-998, not unique


def _call_id(profile: Profile, call: ToolCall) -> str:
    if profile.id_style == "vllm":
        return call.call_id(profile.tool_id_prefix, 32)
    if profile.id_style == "llamacpp":
        return call.call_id("", 32)
    return call.call_id()


def _arguments(call: ToolCall, job: Job) -> str | dict:
    if job.fault.tool_arguments_as_object:
        return call.arguments  # the native dict passed through unencoded
    return json.dumps(call.arguments, separators=(",", ":"), ensure_ascii=False)  # Go's json.Marshal


def _tool_calls(profile: Profile, job: Job, reply: Reply, *, streamed: bool) -> list[dict]:
    calls = []
    for index, call in enumerate(reply.tool_calls):
        entry: dict[str, Any] = {"id": _call_id(profile, call)}
        if streamed or profile.id_style == "ollama":
            entry["index"] = index  # Ollama puts index on non-streamed calls too
        entry.update({"type": "function", "function": {"name": call.name, "arguments": _arguments(call, job)}})
        calls.append(entry)
    return calls


def _finish_reason(reply: Reply) -> str:
    return "tool_calls" if reply.tool_calls and reply.done_reason == "stop" else reply.done_reason


def usage(replies: list[Reply], completion_tokens: int | None = None) -> dict:
    prompt = replies[0].prompt_tokens
    completion = sum(r.eval_count for r in replies) if completion_tokens is None else completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def timings(job: Job, replies: list[Reply]) -> dict:
    """llama-server's `timings`, in milliseconds."""
    prompt_ms = job.timing.prompt_ns / 1e6
    predicted_ms = job.timing.eval_ns / 1e6
    prompt_n, predicted_n = replies[0].prompt_tokens, sum(r.eval_count for r in replies)
    return {"cache_n": 0, "prompt_n": prompt_n, "prompt_ms": prompt_ms,
            "prompt_per_token_ms": prompt_ms / max(1, prompt_n),
            "prompt_per_second": prompt_n / prompt_ms * 1000 if prompt_ms else 0.0,
            "predicted_n": predicted_n, "predicted_ms": predicted_ms,
            "predicted_per_token_ms": predicted_ms / max(1, predicted_n),
            "predicted_per_second": predicted_n / predicted_ms * 1000 if predicted_ms else 0.0}


def sse_event(value: dict | str) -> bytes:
    data = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def replies_for(request: Request, job: Job, conversation: Conversation, n: int | None) -> list[Reply]:
    profile = state_of(request).profile
    count = (n or 1) if profile.honours_n else 1  # Ollama ignores n
    replies = [plan(conversation if i == 0 else _reseed(conversation, i), job.fault) for i in range(count)]
    return replies if profile.reasoning_field else [_thinking_inline(reply) for reply in replies]


def _thinking_inline(reply: Reply) -> Reply:
    """An engine with no reasoning field (Ollama 0.4.7: neither api.Message nor openai.Message
    has one) passes a thinking model's reasoning on as text, inside the model's own <think>
    tags, as DeepSeek-R1's template writes them. The same tokens, so the same counts."""
    if not reply.thinking:
        return reply
    thinking = [*reply.thinking]
    thinking[0] = "<think>" + thinking[0]
    thinking[-1] += "</think>"  # the same token as the first when there is only one
    return replace(reply, thinking=[], content=[*thinking, *reply.content])


def _reseed(conversation: Conversation, i: int) -> Conversation:
    return replace(conversation, seed=conversation.seed + i)


# ---------------------------------------------------------------- chat completions


def chat_completion(profile: Profile, job: Job, model: str, replies: list[Reply], scorers: list[Scorer]) -> dict:
    choices = []
    for index, reply in enumerate(replies):
        message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.content)}
        if reply.tool_calls and profile.id_style != "ollama":
            message["content"] = None  # OpenAI, llama.cpp and vLLM say null; Ollama says ""
        if reply.thinking:
            message[profile.reasoning_field] = "".join(reply.thinking)
        if reply.tool_calls:
            message["tool_calls"] = _tool_calls(profile, job, reply, streamed=False)
        choice: dict[str, Any] = {"index": index, "message": message, "finish_reason": _finish_reason(reply)}
        if scored := scorers[index].whole(reply):
            choice["logprobs"] = {"content": scored["logprobs"]}  # OpenAI's and Ollama's ChoiceLogprobs
        if profile.stop_reason:
            choice["stop_reason"] = reply.stop_sequence
        choices.append(choice)
    result: dict[str, Any] = {"id": completion_id(profile), "object": "chat.completion",
                              "created": int(time.time()), "model": model}
    if profile.system_fingerprint:
        result["system_fingerprint"] = profile.system_fingerprint
    result["choices"] = choices
    result["usage"] = usage(replies)
    if profile.timings:
        result["timings"] = timings(job, replies)
    return result


async def chat_stream(request: Request, job: Job, model: str, replies: list[Reply],
                       options: dict, has_tools: bool, scorers: list[Scorer]) -> AsyncIterator[bytes]:
    """Chat completion chunks as the profile's engine sends them."""
    state = state_of(request)
    profile = state.profile
    head: dict[str, Any] = {"id": completion_id(profile), "object": "chat.completion.chunk",
                            "created": int(time.time()), "model": model}
    if profile.system_fingerprint:
        head["system_fingerprint"] = profile.system_fingerprint
    include_usage = bool(options.get("include_usage")) and profile.stream_usage
    # vLLM adds usage to every chunk only when include_usage is set too (should_include_usage)
    continuous = include_usage and bool(options.get("continuous_usage_stats")) and profile.continuous_usage
    first = True
    written = 0  # completion tokens so far, for vLLM's continuous usage

    def chunk(index: int, delta: dict, finish: str | None = None, stop: str | None = None,
              scored: dict | None = None) -> bytes:
        nonlocal first
        if first or profile.role_on_every_chunk:
            delta = {"role": "assistant", **({"content": ""} if "content" not in delta else {}), **delta}
        first = False
        choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish}
        if scored:
            choice["logprobs"] = {"content": scored["logprobs"]}
        if profile.stop_reason:
            choice["stop_reason"] = stop
        value = {**head, "choices": [choice]}
        if continuous:
            value["usage"] = usage(replies, written)
        return sse_event(value)

    for index, reply in enumerate(replies):
        if first and profile.first_content_null:
            yield chunk(index, {"content": None})  # llama-server opens with an empty role chunk
        # The first choice keeps /api/chat's rhythm, so the same request paces alike on both APIs.
        rhythm = f"{job.model.name}:{reply.prompt_tokens}:{reply.eval_count}" + (f":{index}" if index else "")
        pacer = Pacer(state.settings, rhythm)
        pieces = len(reply.thinking) + len(reply.content) + (1 if reply.tool_calls else 0)
        strike = fault_position(pieces) if job.fault.wire and index == 0 else -1
        buffered = profile.buffer_when_tools and has_tools
        sent = 0
        text = ""
        async for piece in paced_pieces(reply, pacer, job.timing):
            written += 1 if piece.kind != "tool_calls" else reply.tool_call_tokens
            if buffered:
                text += piece.text if piece.kind == "content" else ""
                continue
            for data in _piece_chunks(profile, job, reply, piece, index, chunk, scorers[index].piece(piece)):
                yield data
            sent += 1
            if sent == strike:
                async for data in sse_fault(profile, job, head, index):
                    yield data
                if job.fault.ends_stream:
                    return
        finish = reply.done_reason if profile.stream_finish_is_done_reason else _finish_reason(reply)
        if buffered and not reply.tool_calls:
            # Ollama 0.4.6–0.7 with tools and no call: the buffered text rides on the done
            # chunk, with the finish reason (server/routes.go@v0.4.7 ChatHandler, #9092)
            yield chunk(index, {"content": text}, finish)
            continue
        if buffered:  # the call, parsed from the buffered text, in one chunk
            yield chunk(index, {"content": "", "tool_calls": _tool_calls(profile, job, reply, streamed=True)})
        if profile.finish_delta_keeps_role:
            yield chunk(index, {"content": ""}, finish)  # the done frame, which carries no text
        else:
            final: dict[str, Any] = {"index": index, "delta": {}, "finish_reason": finish}
            if profile.stop_reason:
                final["stop_reason"] = reply.stop_sequence
            value = {**head, "choices": [final]}
            if continuous:
                value["usage"] = usage(replies, written)
            if profile.timings and index == len(replies) - 1 and not include_usage:
                value["timings"] = timings(job, replies)
            yield sse_event(value)
    if include_usage:
        value = {**head, "choices": [], "usage": usage(replies)}
        if profile.timings:
            value["timings"] = timings(job, replies)
        yield sse_event(value)
    yield sse_event("[DONE]")


def _piece_chunks(profile: Profile, job: Job, reply: Reply, piece: Piece, index: int, chunk,
                  scored: dict) -> list[bytes]:
    if piece.kind == "thinking":
        return [chunk(index, {**({"content": ""} if profile.reasoning_keeps_content else {}),
                              profile.reasoning_field: piece.text}, scored=scored)]
    if piece.kind == "content":
        return [chunk(index, {"content": piece.text}, scored=scored)]
    calls = _tool_calls(profile, job, reply, streamed=True)
    if not profile.tool_args_fragments or job.fault.tool_arguments_as_object:
        return [chunk(index, {"tool_calls": calls})]  # Ollama: each call whole, in one delta
    # llama.cpp and vLLM: id and name first, then the arguments in fragments.
    out = []
    for call in calls:
        arguments = call["function"]["arguments"]
        opener = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        out.append(chunk(index, {"tool_calls": [opener]}))
        size = max(1, math.ceil(len(arguments) / profile.tool_args_fragments))
        for start in range(0, len(arguments), size):
            fragment = {"index": call["index"], "function": {"arguments": arguments[start:start + size]}}
            out.append(chunk(index, {"tool_calls": [fragment]}))
    return out


async def sse_fault(profile: Profile, job: Job, head: dict, index: int) -> AsyncIterator[bytes]:
    """A mid-stream fault, in the form the profile's engine gives it over SSE."""
    match job.fault.wire:
        case "cut":
            yield sse_event({**head, "choices": [{"index": index, "delta": {"content": "x"}}]})[:48] + b"\n\n"
        case "blank":
            yield b"\n"  # SSE tolerates it: a blank line only ends an (empty) event
        case "error" if profile.error_event_mid_stream:
            yield sse_event(openai_error_body(profile, 500, MID_STREAM_ERROR))
            if profile.done_after_error_event:
                yield sse_event("[DONE]")
        case "error":  # Ollama decodes its own error line as an empty response: one empty chunk, then silence
            empty = {"text": ""} if head["object"] == "text_completion" else {"delta": {"content": ""}}
            yield sse_event({**head, "choices": [{"index": index, **empty, "finish_reason": None}]})
        case "drop":
            raise DropConnection()


# ---------------------------------------------------------------- completions, embeddings, models


async def numbered(pieces: AsyncIterator[Piece]) -> AsyncIterator[tuple[int, Piece]]:
    count = 0
    async for piece in pieces:
        count += 1
        yield count, piece


def model_card(profile: Profile, name: str) -> dict:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": profile.owned_by}


class TextCompletion:
    """A /v1/completions reply as the profile's engine writes it, whole or as SSE events."""

    def __init__(self, profile: Profile, job: Job, body: CompletionRequest, reply: Reply, seed: int) -> None:
        self.profile, self.job, self.body, self.reply = profile, job, body, reply
        self.head: dict[str, Any] = {"id": completion_id(profile, "cmpl-"), "object": "text_completion",
                                     "created": int(time.time()), "model": body.model}
        if profile.system_fingerprint:
            self.head["system_fingerprint"] = profile.system_fingerprint
        # Ollama's FromCompleteRequest reads logprobs (an int) as "logprobs, with that many
        # alternatives", and answers in its chat format, {"content": [api.Logprob, …]}
        self.scorer = Scorer(bool(body.logprobs) and profile.logprobs and profile.native_api, body.logprobs, seed)

    def _scored(self, tokens: list[str], null: bool) -> dict:
        found = self.scorer.tokens(tokens)
        return {"logprobs": {"content": found["logprobs"]}} if found else {"logprobs": None} if null else {}

    def whole(self) -> dict:
        profile, reply = self.profile, self.reply
        # logprobs null, as OpenAI, llama-server and vLLM send it; Ollama's Go struct leaves it out
        result = {**self.head, "choices": [{"text": "".join(reply.content), "index": 0,
                                            **self._scored(list(reply.content), not profile.native_api),
                                            "finish_reason": reply.done_reason}], "usage": usage([reply])}
        if profile.timings:
            result["timings"] = timings(self.job, [reply])
        return result

    async def events(self, settings) -> AsyncIterator[bytes]:
        profile, job, reply, head = self.profile, self.job, self.reply, self.head
        include_usage = bool((self.body.stream_options or {}).get("include_usage")) and profile.stream_usage
        zeroed = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        zero = {"usage": zeroed} if include_usage and profile.completion_zero_usage else {}

        def choice(text: str, finish_reason: str | None) -> dict:
            tokens = [text] if text else []
            return {"choices": [{"text": text, "index": 0, **self._scored(tokens, profile.completion_logprobs_in_stream),
                                 "finish_reason": finish_reason}], **zero}

        pacer = Pacer(settings, f"cmpl:{reply.prompt_tokens}:{reply.eval_count}")
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
