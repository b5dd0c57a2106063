"""The /v1 API through the official `openai` SDK and raw httpx (default profile: current Ollama)."""

import base64
import json
import struct

import jsonschema
import openai
import pytest

from support import TIME_TOOL, WEATHER_TOOL, sse_events

USER = [{"role": "user", "content": "Hello from the SDK"}]


def test_chat_non_streaming(openai_client):
    completion = openai_client.chat.completions.create(model="lab", messages=USER)
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_stream_wire_shape(http):
    response = http.post("/v1/chat/completions", json={
        "model": "lab", "messages": USER, "stream": True, "stream_options": {"include_usage": True}})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "\nevent:" not in response.text  # chat chunks carry no event names
    *chunks, finish, usage, done = sse_events(response)
    assert done == "[DONE]"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])  # role on the first chunk only
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert finish["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == len(chunks)
    assert len({c["id"] for c in [*chunks, finish, usage]}) == 1


def test_stream_agrees_with_non_stream_and_native(openai_client, ollama_client):
    stream = openai_client.chat.completions.create(
        model="lab", messages=USER, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = openai_client.chat.completions.create(model="lab", messages=USER)
    native = ollama_client.chat("lab", messages=USER)
    assert text == whole.choices[0].message.content == native.message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens == native.eval_count
    assert chunks[-1].usage.prompt_tokens == native.prompt_eval_count


def test_no_usage_chunk_unless_asked(http):
    events = sse_events(http.post("/v1/chat/completions", json={"model": "lab", "messages": USER, "stream": True}))
    assert all(e == "[DONE]" or "usage" not in e for e in events)


def test_multi_turn(openai_client):
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Again"}]
    completion = openai_client.chat.completions.create(model="lab", messages=messages)
    assert completion.choices[0].message.content.startswith("Turn 2.")


def test_content_parts(openai_client):
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hello from the SDK"}]}]
    as_parts = openai_client.chat.completions.create(model="lab", messages=parts)
    as_text = openai_client.chat.completions.create(model="lab", messages=USER)
    assert as_parts.choices[0].message.content == as_text.choices[0].message.content


def test_tool_loop_non_streaming(openai_client):
    messages = [{"role": "user", "content": "What time is it in Tokyo?"}]
    first = openai_client.chat.completions.create(model="lab", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = first.choices[0].message.tool_calls
    assert call.function.name == "get_time" and call.id.startswith("call_")
    arguments = json.loads(call.function.arguments)  # a JSON string on /v1, unlike the native API
    jsonschema.validate(arguments, TIME_TOOL["function"]["parameters"])
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "09:41 JST"}]
    second = openai_client.chat.completions.create(model="lab", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL])
    assert second.choices[0].finish_reason == "stop" and not second.choices[0].message.tool_calls
    assert "get_time" in second.choices[0].message.content and "09:41 JST" in second.choices[0].message.content


def test_tool_call_streamed(openai_client):
    stream = openai_client.chat.completions.create(
        model="lab", messages=[{"role": "user", "content": "weather in Oslo"}], tools=[WEATHER_TOOL], stream=True)
    chunks = list(stream)
    deltas = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(deltas) == 1 and deltas[0][0].index == 0  # Ollama sends each call whole
    assert json.loads(deltas[0][0].function.arguments)["city"] == "Oslo"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("choice, expected", [
    ("none", None), ("auto", "get_weather"), ("required", "get_weather"),
    ({"type": "function", "function": {"name": "get_time"}}, "get_time"),
])
def test_tool_choice(openai_client, choice, expected):
    completion = openai_client.chat.completions.create(
        model="lab", messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=choice)
    calls = completion.choices[0].message.tool_calls
    assert (calls[0].function.name if calls else None) == expected


def test_required_keeps_calling_after_a_result(openai_client):
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    auto = openai_client.chat.completions.create(model="lab", messages=messages, tools=[WEATHER_TOOL])
    required = openai_client.chat.completions.create(model="lab", messages=messages, tools=[WEATHER_TOOL],
                                                     tool_choice="required")
    assert auto.choices[0].message.tool_calls is None and "sunny" in auto.choices[0].message.content
    assert required.choices[0].message.tool_calls  # "required" means every turn


SCHEMA = {"type": "object", "additionalProperties": False,
          "properties": {"answer": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                         "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3},
                         "mood": {"oneOf": [{"const": "happy"}, {"const": "sad"}]}},
          "required": ["answer", "tags", "mood"]}


@pytest.mark.parametrize("stream", [False, True])
def test_response_format_json_schema(openai_client, stream):
    kwargs = dict(model="lab", messages=USER, stop=["]", "}"],
                  response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}})
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in
                       openai_client.chat.completions.create(stream=True, **kwargs) if c.choices)
    else:
        text = openai_client.chat.completions.create(**kwargs).choices[0].message.content
    jsonschema.validate(json.loads(text), SCHEMA)


def test_response_format_json_object(openai_client):
    completion = openai_client.chat.completions.create(
        model="lab", messages=USER, response_format={"type": "json_object"})
    assert isinstance(json.loads(completion.choices[0].message.content), dict)


def test_max_tokens_and_stop(openai_client):
    cut = openai_client.chat.completions.create(model="lab", messages=USER, max_tokens=4)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 4
    full = openai_client.chat.completions.create(model="lab", messages=USER).choices[0].message.content
    stop = full.split()[3]
    stopped = openai_client.chat.completions.create(model="lab", messages=USER, stop=[stop])
    assert stopped.choices[0].finish_reason == "stop" and stop not in stopped.choices[0].message.content


def test_thinking_as_reasoning(openai_client, http):
    completion = http.post("/v1/chat/completions", json={"model": "lab-think", "messages": USER}).json()
    assert completion["choices"][0]["message"]["reasoning"]  # Ollama's field name, not reasoning_content
    off = openai_client.chat.completions.create(model="lab-think", messages=USER, reasoning_effort="none")
    assert "reasoning" not in off.choices[0].message.model_dump()


def test_vllm_style_extras_are_accepted(openai_client):
    completion = openai_client.chat.completions.create(
        model="lab", messages=USER, extra_body={"top_k": 20, "repetition_penalty": 1.1, "guided_json": {}})
    assert completion.choices[0].message.content


def test_completions(openai_client):
    whole = openai_client.completions.create(model="lab", prompt="Once upon a time")
    assert whole.object == "text_completion" and whole.choices[0].text
    streamed = "".join(c.choices[0].text for c in
                       openai_client.completions.create(model="lab", prompt="Once upon a time", stream=True)
                       if c.choices)
    assert streamed == whole.choices[0].text


def test_embeddings_float_and_base64(openai_client, http):
    floats = openai_client.embeddings.create(model="lab-embed", input=["alpha", "beta"])
    assert [d.index for d in floats.data] == [0, 1] and len(floats.data[0].embedding) == 384
    raw = http.post("/v1/embeddings", json={"model": "lab-embed", "input": "alpha",
                                            "encoding_format": "base64"}).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert struct.unpack(f"<{len(packed) // 4}f", packed) == pytest.approx(floats.data[0].embedding)
    # the SDK asks for base64 by default and decodes it as little-endian float32 itself
    assert openai_client.embeddings.create(model="lab-embed", input="alpha").data[0].embedding == \
        pytest.approx(floats.data[0].embedding)
    assert len(openai_client.embeddings.create(model="lab-embed", input="a", dimensions=16).data[0].embedding) == 16


def test_models(openai_client):
    ids = [m.id for m in openai_client.models.list()]
    assert "lab:latest" in ids and "lab:http-500" in ids
    assert openai_client.models.retrieve("lab:latest").owned_by == "library"
    with pytest.raises(openai.NotFoundError):
        openai_client.models.retrieve("nope:latest")


def test_unknown_model_envelope(openai_client):
    with pytest.raises(openai.NotFoundError) as missing:
        openai_client.chat.completions.create(model="nope", messages=USER)
    assert missing.value.body == {"message": "model 'nope' not found", "type": "not_found_error",
                                  "param": None, "code": None}
