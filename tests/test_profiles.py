"""Each profile's defining wire differences (see src/compatlab/engine/profiles.py), asserted on the
wire with raw httpx and again through the official `openai` client, which must still parse them.

One engine per profile for the whole session (`engines.get`); `ollama` is the default engine.
"""

import json
import re
from dataclasses import dataclass

import httpx
import jsonschema
import openai
import pytest

from support import TIME_TOOL, WEATHER_TOOL, sse_events

PROFILES = ("ollama", "ollama-legacy", "llamacpp", "vllm")
HELLO = [{"role": "user", "content": "Hello"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
# The same question after the tool answered: the model replies in text.
AFTER_TOOL = WEATHER + [
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "11 degrees celsius"},
]


@dataclass
class Peer:
    """One profile's engine, seen through raw httpx (on /v1) and the official openai client."""

    name: str
    url: str
    http: httpx.Client
    client: openai.OpenAI

    def stream(self, **body) -> list:
        """A streamed chat completion as raw SSE events (dicts, then "[DONE]")."""
        response = self.http.post("/chat/completions", json={"model": "lab", "messages": HELLO, **body, "stream": True})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse_events(response)

    def complete(self, **body) -> httpx.Response:
        return self.http.post("/chat/completions", json={"model": "lab", "messages": HELLO, **body})

    def chunks(self, **kwargs) -> list:
        """The same stream as the openai client parses it."""
        kwargs = {"model": "lab", "messages": HELLO, **kwargs}
        return list(self.client.chat.completions.create(stream=True, **kwargs))


@pytest.fixture(scope="module")
def peers(engines):
    opened: dict[str, Peer] = {}

    def get(name: str) -> Peer:
        if name not in opened:
            engine = engines.get() if name == "ollama" else engines.get("--profile", name)
            opened[name] = Peer(name, engine.url, httpx.Client(base_url=engine.v1_url, timeout=30),
                                openai.OpenAI(base_url=engine.v1_url, api_key="compatlab", max_retries=0))
        return opened[name]

    yield get
    for peer in opened.values():
        peer.http.close()
        peer.client.close()


@pytest.fixture()
def ollama_peer(peers) -> Peer:
    return peers("ollama")


@pytest.fixture()
def legacy(peers) -> Peer:
    return peers("ollama-legacy")


@pytest.fixture()
def llamacpp(peers) -> Peer:
    return peers("llamacpp")


@pytest.fixture()
def vllm(peers) -> Peer:
    return peers("vllm")


@pytest.fixture(params=PROFILES)
def any_peer(request, peers) -> Peer:
    return peers(request.param)


# ---------------------------------------------------------------- helpers


def choice_of(event: dict) -> dict | None:
    return event["choices"][0] if isinstance(event, dict) and event.get("choices") else None


def deltas(events: list) -> list[dict]:
    return [choice_of(e)["delta"] for e in events if choice_of(e)]


def content_of(events: list) -> str:
    return "".join(d.get("content") or "" for d in deltas(events))


def client_text(chunks: list) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def client_finish_reasons(chunks: list) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


def client_tool_calls(chunks: list) -> dict[int, dict]:
    """Tool calls rebuilt from openai-client deltas the way SDK users do: joined by `index`."""
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for delta in (c.delta for c in chunk.choices):
            for part in delta.tool_calls or []:
                call = calls.setdefault(part.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = call["id"] or part.id
                if part.function:
                    call["name"] += part.function.name or ""
                    call["arguments"] += part.function.arguments or ""
    return calls


def tool_deltas(events: list) -> list[dict]:
    return [part for d in deltas(events) for part in d.get("tool_calls") or []]


# ---------------------------------------------------------------- ollama (default, current Ollama)


def test_ollama_role_only_on_first_chunk(ollama_peer):
    first, *rest = deltas(ollama_peer.stream())
    assert first["role"] == "assistant"
    assert all("role" not in d for d in rest)
    chunks = ollama_peer.chunks()
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:])


def test_ollama_finish_is_its_own_chunk_with_empty_delta_then_done(ollama_peer):
    *content, finish, done = ollama_peer.stream()
    assert done == "[DONE]"
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert all(choice_of(c)["finish_reason"] is None and choice_of(c)["delta"].get("content") for c in content)
    assert client_finish_reasons(ollama_peer.chunks()) == ["stop"]


def test_ollama_no_usage_chunk_without_include_usage(ollama_peer):
    events = ollama_peer.stream()
    assert not any("usage" in e for e in events if isinstance(e, dict))
    assert all(c.usage is None for c in ollama_peer.chunks())


def test_ollama_usage_chunk_with_empty_choices_when_include_usage(ollama_peer):
    *content, finish, usage, done = ollama_peer.stream(stream_options={"include_usage": True})
    assert usage["choices"] == [] and done == "[DONE]"
    assert usage["usage"]["completion_tokens"] == len(content)  # one token per chunk
    last = ollama_peer.chunks(stream_options={"include_usage": True})[-1]
    assert last.choices == [] and last.usage.completion_tokens == len(content)


def test_ollama_id_and_system_fingerprint(ollama_peer):
    events = [e for e in ollama_peer.stream() if e != "[DONE]"]
    ids = {e["id"] for e in events}
    assert len(ids) == 1  # one id for the whole stream
    (stream_id,) = ids
    assert re.fullmatch(r"chatcmpl-\d{1,3}", stream_id) and int(stream_id.split("-")[1]) <= 998
    assert {e["system_fingerprint"] for e in events} == {"fp_ollama"}
    chunk = ollama_peer.chunks()[0]
    assert re.fullmatch(r"chatcmpl-\d{1,3}", chunk.id) and chunk.system_fingerprint == "fp_ollama"


def test_ollama_tool_call_whole_in_one_delta(ollama_peer):
    events = ollama_peer.stream(messages=WEATHER, tools=[WEATHER_TOOL])
    (call,) = tool_deltas(events)  # one delta carries the whole call
    assert call["id"].startswith("call_") and call["index"] == 0 and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"])["city"] == "Paris"  # a JSON string, not an object
    assert choice_of(events[-2])["finish_reason"] == "tool_calls"
    chunks = ollama_peer.chunks(messages=WEATHER, tools=[WEATHER_TOOL])
    (rebuilt,) = client_tool_calls(chunks).values()
    assert rebuilt["arguments"] == call["function"]["arguments"]
    assert client_finish_reasons(chunks) == ["tool_calls"]


def test_ollama_non_streamed_tool_call_has_empty_string_content(ollama_peer):
    message = ollama_peer.complete(messages=WEATHER, tools=[WEATHER_TOOL]).json()["choices"][0]["message"]
    assert message["content"] == ""  # Ollama says ""; OpenAI, llama.cpp and vLLM say null
    completion = ollama_peer.client.chat.completions.create(model="lab", messages=WEATHER, tools=[WEATHER_TOOL])
    assert completion.choices[0].message.content == ""
    assert completion.choices[0].finish_reason == "tool_calls"


def test_ollama_reasoning_field_is_reasoning(ollama_peer):
    events = ollama_peer.stream(model="lab-think")
    assert any("reasoning" in d for d in deltas(events))
    assert not any("reasoning_content" in d for d in deltas(events))
    chunks = ollama_peer.chunks(model="lab-think")
    assert "".join(getattr(c.choices[0].delta, "reasoning", None) or "" for c in chunks if c.choices)
    message = ollama_peer.client.chat.completions.create(model="lab-think", messages=HELLO).choices[0].message
    assert message.model_extra.get("reasoning") and "reasoning_content" not in message.model_extra


def test_ollama_tool_choice_none_answers_in_text(ollama_peer):
    completion = ollama_peer.client.chat.completions.create(
        model="lab", messages=WEATHER, tools=[WEATHER_TOOL], tool_choice="none")
    assert completion.choices[0].message.tool_calls is None and completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"


def test_ollama_tool_choice_required_calls_a_tool_even_after_a_tool_result(ollama_peer):
    completion = ollama_peer.client.chat.completions.create(
        model="lab", messages=AFTER_TOOL, tools=[WEATHER_TOOL], tool_choice="required")
    assert completion.choices[0].message.tool_calls  # "auto" would answer in text here
    assert completion.choices[0].finish_reason == "tool_calls"


def test_ollama_tool_choice_named_calls_that_tool(ollama_peer):
    completion = ollama_peer.client.chat.completions.create(
        model="lab", messages=WEATHER, tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}})
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "get_time"  # though the user asked about the weather


def test_ollama_out_of_range_temperature_is_400(ollama_peer):
    with pytest.raises(openai.BadRequestError) as err:
        ollama_peer.client.chat.completions.create(model="lab", messages=HELLO, temperature=5)
    assert err.value.status_code == 400
    # Ollama's openai.NewError never sets param or code: both null, whatever was refused
    assert err.value.body["param"] is None and err.value.body["code"] is None


def test_ollama_ignores_max_completion_tokens_but_honours_max_tokens(ollama_peer):
    create = ollama_peer.client.chat.completions.create
    full = create(model="lab", messages=HELLO)
    ignored = create(model="lab", messages=HELLO, max_completion_tokens=3)  # no such field in Ollama
    cut = create(model="lab", messages=HELLO, max_tokens=3)
    assert ignored.choices[0].message.content == full.choices[0].message.content
    assert ignored.choices[0].finish_reason == "stop"
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3


def test_ollama_ignores_n(ollama_peer):
    assert len(ollama_peer.complete(n=2).json()["choices"]) == 1
    events = ollama_peer.stream(n=2)
    assert {choice_of(e)["index"] for e in events if choice_of(e)} == {0}
    assert len(ollama_peer.client.chat.completions.create(model="lab", messages=HELLO, n=2).choices) == 1


# ---------------------------------------------------------------- ollama-legacy (Ollama v0.4.7's /v1)


def test_legacy_role_on_every_chunk(legacy):
    assert all(d["role"] == "assistant" and "content" in d for d in deltas(legacy.stream()))
    chunks = legacy.chunks()
    assert all(c.choices[0].delta.role == "assistant" for c in chunks)
    assert client_text(chunks) == content_of(legacy.stream())


def test_legacy_finish_reason_on_its_own_chunk_with_role_and_empty_content(legacy):
    # openai/openai.go@v0.4.7 toChunk turns the done frame, which carries no text
    # (llm/server.go@v0.4.7), into a chunk of its own: delta {"role":"assistant","content":""}
    events = legacy.stream()
    *content, last, done = events
    assert done == "[DONE]"
    assert last["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]
    assert all(choice_of(c)["finish_reason"] is None and choice_of(c)["delta"]["content"] for c in content)
    assert not any(d == {} for d in deltas(events))  # never an empty delta
    assert client_finish_reasons(legacy.chunks()) == ["stop"]


def test_legacy_ignores_include_usage(legacy):
    events = legacy.stream(stream_options={"include_usage": True})
    assert not any("usage" in e for e in events if isinstance(e, dict))
    assert all(e["choices"] for e in events if isinstance(e, dict))  # no `choices: []` usage chunk
    assert all(c.usage is None for c in legacy.chunks(stream_options={"include_usage": True}))


def test_legacy_with_tools_the_reply_arrives_in_one_chunk(legacy, ollama_peer):
    # after the tool result the model answers in text; with tools in the request it is buffered
    # and sent on the done frame, finish reason and all (server/routes.go@v0.4.7 ChatHandler)
    events = legacy.stream(messages=AFTER_TOOL, tools=[WEATHER_TOOL])
    whole, done = events
    assert done == "[DONE]" and choice_of(whole)["finish_reason"] == "stop"
    assert choice_of(whole)["delta"]["content"] == content_of(ollama_peer.stream(messages=AFTER_TOOL, tools=[WEATHER_TOOL]))
    assert len(legacy.chunks(messages=AFTER_TOOL, tools=[WEATHER_TOOL])) == 1


def test_legacy_with_tools_a_tool_call_arrives_in_one_chunk_and_the_stream_says_stop(legacy):
    whole, finish, done = legacy.stream(messages=WEATHER, tools=[WEATHER_TOOL])
    assert choice_of(whole)["delta"]["tool_calls"][0]["function"]["name"] == "get_weather"
    # toChunk copies the native done_reason; only the non-streamed reply says tool_calls (v0.4.7)
    assert choice_of(finish)["finish_reason"] == "stop"
    assert client_finish_reasons(legacy.chunks(messages=WEATHER, tools=[WEATHER_TOOL])) == ["stop"]
    whole_reply = legacy.client.chat.completions.create(model="lab", messages=WEATHER, tools=[WEATHER_TOOL])
    assert whole_reply.choices[0].finish_reason == "tool_calls"
    (call,) = client_tool_calls(legacy.chunks(messages=WEATHER, tools=[WEATHER_TOOL])).values()
    assert json.loads(call["arguments"])["city"] == "Paris"


def test_legacy_accepts_out_of_range_temperature(legacy):
    assert legacy.complete(temperature=5).status_code == 200
    assert legacy.client.chat.completions.create(model="lab", messages=HELLO, temperature=5).choices


def test_legacy_ignores_tool_choice(legacy):
    completion = legacy.client.chat.completions.create(
        model="lab", messages=WEATHER, tools=[WEATHER_TOOL], tool_choice="none")
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"  # called anyway


# ---------------------------------------------------------------- llamacpp (llama-server)


def test_llamacpp_first_chunk_is_role_with_null_content(llamacpp):
    first, second, *_ = deltas(llamacpp.stream())
    assert first == {"role": "assistant", "content": None}
    assert second == {"content": "Turn"}
    delta = llamacpp.chunks()[0].choices[0].delta
    assert delta.role == "assistant" and delta.content is None


def test_llamacpp_timings_on_the_last_chunk(llamacpp):
    events = llamacpp.stream()
    *rest, last, done = events
    assert done == "[DONE]" and choice_of(last)["finish_reason"] == "stop"
    assert set(last["timings"]) >= {"prompt_n", "prompt_ms", "predicted_n", "predicted_ms", "predicted_per_second"}
    assert not any("timings" in e for e in rest)
    assert llamacpp.chunks()[-1].model_extra["timings"]["predicted_n"] == last["timings"]["predicted_n"]


def test_llamacpp_timings_ride_on_the_usage_chunk_when_include_usage(llamacpp):
    *rest, usage, done = llamacpp.stream(stream_options={"include_usage": True})
    assert usage["choices"] == [] and not any("timings" in e for e in rest)
    assert usage["timings"]["predicted_n"] == usage["usage"]["completion_tokens"]
    assert usage["timings"]["prompt_n"] == usage["usage"]["prompt_tokens"]
    last = llamacpp.chunks(stream_options={"include_usage": True})[-1]
    assert last.model_extra["timings"]["predicted_n"] == last.usage.completion_tokens


def test_llamacpp_tool_arguments_arrive_in_fragments(llamacpp, ollama_peer):
    events = llamacpp.stream(messages=WEATHER, tools=[WEATHER_TOOL])
    opener, *fragments = tool_deltas(events)
    assert opener["function"] == {"name": "get_weather", "arguments": ""} and opener["id"]
    assert len(fragments) > 1 and all(set(f) == {"index", "function"} for f in fragments)
    (call,) = client_tool_calls(llamacpp.chunks(messages=WEATHER, tools=[WEATHER_TOOL])).values()
    # joined by index they make the same arguments Ollama sends whole
    (whole,) = tool_deltas(ollama_peer.stream(messages=WEATHER, tools=[WEATHER_TOOL]))
    assert json.loads(call["arguments"]) == json.loads(whole["function"]["arguments"])
    assert re.fullmatch(r"[a-z0-9]{32}", call["id"])


def test_llamacpp_error_code_is_numeric(llamacpp):
    response = llamacpp.complete(model="lab:http-500")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == 500 and response.json()["error"]["type"] == "server_error"
    with pytest.raises(openai.InternalServerError) as err:
        llamacpp.client.chat.completions.create(model="lab:http-500", messages=HELLO)
    assert err.value.body["code"] == 500


def test_llamacpp_serves_any_model_name_with_its_one_model(llamacpp):
    # a single-model llama-server never checks the name (only router mode refuses one)
    unknown = llamacpp.complete(model="nope")
    known = llamacpp.complete(model="lab:latest")
    assert unknown.status_code == 200, unknown.text
    assert unknown.json()["choices"][0]["message"] == known.json()["choices"][0]["message"]
    assert unknown.json()["model"] == "nope"  # the name is only copied into the reply
    assert llamacpp.client.embeddings.create(model="nope", input="hi").data[0].embedding


def test_llamacpp_has_no_native_api(llamacpp):
    response = httpx.post(llamacpp.url + "/api/chat", json={"model": "lab", "messages": HELLO})
    assert response.status_code == 404
    assert response.json() == {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}


def test_llamacpp_health(llamacpp):
    response = httpx.get(llamacpp.url + "/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_llamacpp_reasoning_field_is_reasoning_content(llamacpp):
    events = llamacpp.stream(model="lab-think")
    assert any("reasoning_content" in d for d in deltas(events))
    assert not any("reasoning" in d for d in deltas(events))
    message = llamacpp.client.chat.completions.create(model="lab-think", messages=HELLO).choices[0].message
    assert message.model_extra.get("reasoning_content")


def test_llamacpp_honours_n(llamacpp):
    choices = llamacpp.complete(n=2).json()["choices"]
    assert [c["index"] for c in choices] == [0, 1]
    assert choices[0]["message"]["content"] != choices[1]["message"]["content"]
    chunks = llamacpp.chunks(n=2)
    finished = {c.choices[0].index: c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason}
    assert finished == {0: "stop", 1: "stop"}


# ---------------------------------------------------------------- vllm


def test_vllm_stop_reason_is_the_stop_string_that_ended_the_reply(vllm):
    choice = vllm.complete(stop=["said"]).json()["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == "said"
    events = vllm.stream(stop=["said"])
    *content, finish, _ = events
    assert choice_of(finish)["stop_reason"] == "said"
    assert all(choice_of(c)["stop_reason"] is None for c in content)
    assert vllm.chunks(stop=["said"])[-1].choices[0].model_extra["stop_reason"] == "said"


def test_vllm_stop_reason_is_null_without_a_stop_string(vllm):
    choice = vllm.complete().json()["choices"][0]
    assert "stop_reason" in choice and choice["stop_reason"] is None
    extra = vllm.client.chat.completions.create(model="lab", messages=HELLO).choices[0].model_extra
    assert "stop_reason" in extra and extra["stop_reason"] is None


def test_vllm_continuous_usage_stats_put_usage_on_every_chunk(vllm):
    options = {"include_usage": True, "continuous_usage_stats": True}
    events = [e for e in vllm.stream(stream_options=options) if e != "[DONE]"]
    counts = [e["usage"]["completion_tokens"] for e in events]
    assert counts == sorted(counts) and counts[0] < counts[-1]  # growing as tokens are written
    written = [e for e in events if choice_of(e) and choice_of(e)["delta"].get("content")]
    assert counts[-1] == len(written)  # the last count is the whole reply: one token per chunk
    chunks = vllm.chunks(stream_options=options)
    assert all(c.usage is not None for c in chunks)
    assert [c.usage.completion_tokens for c in chunks] == counts


def test_vllm_continuous_usage_stats_need_include_usage(vllm):
    # vLLM's should_include_usage: continuous stats only count when include_usage is set too
    events = vllm.stream(stream_options={"continuous_usage_stats": True})
    assert not any("usage" in e for e in events if isinstance(e, dict))


def test_vllm_tool_arguments_arrive_in_fragments_with_a_tool_id_prefix(vllm):
    events = vllm.stream(messages=WEATHER, tools=[WEATHER_TOOL])
    opener, *fragments = tool_deltas(events)
    assert opener["id"].startswith("chatcmpl-tool-") and opener["function"]["arguments"] == ""
    assert len(fragments) > 1
    (call,) = client_tool_calls(vllm.chunks(messages=WEATHER, tools=[WEATHER_TOOL])).values()
    assert call["id"].startswith("chatcmpl-tool-")
    assert json.loads(call["arguments"])["city"] == "Paris"


CITY = {"type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
        "required": ["name", "population"], "additionalProperties": False}


@pytest.mark.parametrize("extra", [{"structured_outputs": {"json": CITY}}, {"guided_json": CITY}],
                         ids=["structured_outputs", "guided_json"])
def test_vllm_structured_output_extras_are_honoured(vllm, extra):
    raw = vllm.complete(**extra).json()["choices"][0]["message"]["content"]
    jsonschema.validate(json.loads(raw), CITY)
    completion = vllm.client.chat.completions.create(model="lab", messages=HELLO, extra_body=extra)
    assert completion.choices[0].message.content == raw


def test_vllm_has_no_native_api(vllm):
    response = httpx.post(vllm.url + "/api/chat", json={"model": "lab", "messages": HELLO})
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


def test_vllm_error_code_is_numeric(vllm):
    body = vllm.complete(temperature=5).json()["error"]
    assert body["code"] == 400 and body["type"] == "BadRequestError" and body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as err:
        vllm.client.chat.completions.create(model="lab", messages=HELLO, temperature=5)
    assert err.value.body["code"] == 400


# ---------------------------------------------------------------- across profiles: only the wire differs


def test_same_conversation_same_content_under_every_profile(any_peer, ollama_peer):
    expected = ollama_peer.complete().json()["choices"][0]["message"]["content"]
    assert any_peer.complete().json()["choices"][0]["message"]["content"] == expected
    assert content_of(any_peer.stream()) == expected
    assert client_text(any_peer.chunks()) == expected


def test_same_reasoning_under_every_profile(any_peer, ollama_peer):
    expected = ollama_peer.complete(model="lab-think").json()["choices"][0]["message"]
    message = any_peer.complete(model="lab-think").json()["choices"][0]["message"]
    if any_peer.name == "ollama-legacy":  # v0.4.7 has no reasoning field: the reasoning is text, in <think> tags
        assert set(message) == {"role", "content"}
        assert message["content"] == f"<think>{expected['reasoning']}</think>{expected['content']}"
        assert client_text(any_peer.chunks(model="lab-think")) == message["content"]
    else:
        field = "reasoning" if any_peer.name == "ollama" else "reasoning_content"
        assert message[field] == expected["reasoning"] and message["content"] == expected["content"]


def test_same_tool_call_under_every_profile(any_peer, ollama_peer):
    (expected,) = client_tool_calls(ollama_peer.chunks(messages=WEATHER, tools=[WEATHER_TOOL])).values()
    (call,) = client_tool_calls(any_peer.chunks(messages=WEATHER, tools=[WEATHER_TOOL])).values()
    assert call["name"] == expected["name"]
    assert json.loads(call["arguments"]) == json.loads(expected["arguments"])


@pytest.mark.parametrize("profile, content", [("ollama", ""), ("ollama-legacy", ""), ("llamacpp", None), ("vllm", None)])
def test_non_streamed_tool_call_content_by_profile(peers, profile, content):
    message = peers(profile).complete(messages=WEATHER, tools=[WEATHER_TOOL]).json()["choices"][0]["message"]
    assert message["content"] == content and message["tool_calls"]


@pytest.mark.parametrize("profile, pattern", [
    ("ollama", r"chatcmpl-\d{1,3}"), ("ollama-legacy", r"chatcmpl-\d{1,3}"),
    ("llamacpp", r"chatcmpl-[A-Za-z0-9]{32}"), ("vllm", r"chatcmpl-[0-9a-f]{32}"),
])
def test_completion_id_style_by_profile(peers, profile, pattern):
    peer = peers(profile)
    assert re.fullmatch(pattern, peer.complete().json()["id"])
    assert re.fullmatch(pattern, peer.chunks()[0].id)


@pytest.mark.parametrize("profile, fingerprint", [
    ("ollama", "fp_ollama"), ("ollama-legacy", "fp_ollama"), ("llamacpp", "b6097-9515c613"), ("vllm", None)])
def test_system_fingerprint_by_profile(peers, profile, fingerprint):
    body = peers(profile).complete().json()
    assert body.get("system_fingerprint") == fingerprint
    assert ("system_fingerprint" in body) == (fingerprint is not None)  # vLLM leaves it out


@pytest.mark.parametrize("profile, status", [("ollama", 400), ("ollama-legacy", 200), ("llamacpp", 200), ("vllm", 400)])
def test_temperature_range_check_by_profile(peers, profile, status):
    assert peers(profile).complete(temperature=5).status_code == status


@pytest.mark.parametrize("profile, honoured", [
    ("ollama", False), ("ollama-legacy", False), ("llamacpp", True), ("vllm", True)])
def test_max_completion_tokens_by_profile(peers, profile, honoured):
    completion = peers(profile).client.chat.completions.create(model="lab", messages=HELLO, max_completion_tokens=3)
    assert (completion.choices[0].finish_reason == "length") is honoured
    assert (completion.usage.completion_tokens == 3) is honoured


@pytest.mark.parametrize("profile, count", [("ollama", 1), ("ollama-legacy", 1), ("llamacpp", 2), ("vllm", 2)])
def test_n_by_profile(peers, profile, count):
    assert len(peers(profile).client.chat.completions.create(model="lab", messages=HELLO, n=2).choices) == count


# ---------------------------------------------------------------- what each engine's HTTP framework decides

# gin (Ollama), cpp-httplib (llama-server), FastAPI (vLLM): see engine/frameworks.py
FRAMEWORK_CONTENT_TYPES = {  # /v1: a reply, a body that cannot be read (temperature "hot"), a stream
    "ollama": ("application/json", "application/json; charset=utf-8", "text/event-stream"),
    "ollama-legacy": ("application/json", "application/json; charset=utf-8", "text/event-stream"),
    "llamacpp": ("application/json; charset=utf-8", "application/json; charset=utf-8", "text/event-stream"),
    "vllm": ("application/json", "application/json", "text/event-stream; charset=utf-8"),
}
ROUTE_ERRORS = {  # (status, content type, body) for an unknown /v1 route, then for a wrong method
    "ollama": ((404, "text/plain", "404 page not found"), (405, "text/plain", "405 method not allowed")),
    "ollama-legacy": ((404, "text/plain", "404 page not found"), (405, "text/plain", "405 method not allowed")),
    "llamacpp": ((404, "application/json; charset=utf-8",
                  '{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}'),) * 2,
    "vllm": ((404, "application/json", '{"detail":"Not Found"}'), (405, "application/json", '{"detail":"Method Not Allowed"}')),
}


def test_content_types_are_the_engines_frameworks(any_peer):
    json_type, unbound_type, sse_type = FRAMEWORK_CONTENT_TYPES[any_peer.name]
    assert any_peer.complete().headers["content-type"] == json_type
    assert any_peer.complete(temperature="hot").headers["content-type"] == unbound_type
    streamed = any_peer.http.post("/chat/completions", json={"model": "lab", "messages": HELLO, "stream": True})
    assert streamed.headers["content-type"] == sse_type and "cache-control" not in streamed.headers


def test_unknown_routes_and_wrong_methods_get_the_frameworks_answer(any_peer):
    unknown, wrong_method = ROUTE_ERRORS[any_peer.name]
    for response, (status, content_type, body) in ((any_peer.http.post("/nope", json={}), unknown),
                                                   (any_peer.http.get("/chat/completions"), wrong_method)):
        assert response.status_code == status and response.headers["content-type"] == content_type
        assert response.text == body


def test_llamacpp_text_completion_stream_has_usage_and_timings_on_its_finish_chunk(llamacpp):
    for options in ({}, {"stream_options": {"include_usage": True}}):
        response = llamacpp.http.post("/completions", json={"model": "lab", "prompt": "Hi", "max_tokens": 3,
                                                            "stream": True, **options})
        events = sse_events(response)
        assert events[-1] == "[DONE]" and all(event["choices"] for event in events[:-1])  # no usage chunk
        assert all(event["choices"][0]["logprobs"] is None for event in events[:-1])
        assert events[-2]["choices"][0]["finish_reason"] == "length"
        assert events[-2]["usage"]["completion_tokens"] == 3 and events[-2]["timings"]["predicted_n"] == 3
    # the openai client reads the usage where llama-server puts it
    streamed = list(llamacpp.client.completions.create(model="lab", prompt="Hi", max_tokens=3, stream=True))
    assert streamed[-1].usage.completion_tokens == 3


# ---------------------------------------------------------------- current Ollama's /v1 details (openai/openai.go@v0.32.15)

PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def image_message(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def test_ollama_thinking_only_deltas_still_carry_an_empty_content(ollama_peer, llamacpp):
    thinking = [d for d in deltas(ollama_peer.stream(model="lab-think")) if d.get("reasoning")]
    assert thinking and all(d["content"] == "" for d in thinking)  # toChunk keeps "" (Content any, omitempty)
    # llama-server omits it: content and reasoning_content come in deltas of their own
    assert all("content" not in d for d in deltas(llamacpp.stream(model="lab-think")) if d.get("reasoning_content"))
    # and the SDK reads both the same way
    chunks = ollama_peer.chunks(model="lab-think")
    assert any(chunk.choices and chunk.choices[0].delta.model_extra.get("reasoning") for chunk in chunks)


@pytest.mark.parametrize("profile, url, message", [
    ("ollama", "https://example.com/cat.png", "image URLs are not currently supported, please use base64 encoded data instead"),
    ("ollama", "data:image/gif;base64,R0lGODlh", "invalid image input"),
    ("ollama", "data:image/png;base64,not base64!", "invalid image input"),
    ("ollama-legacy", "https://example.com/cat.png", "invalid image input"),  # v0.4.7 had no message of its own
    ("ollama-legacy", f"data:image/webp;base64,{PNG_1PX}", "invalid image input"),  # webp came later
    ("ollama-legacy", "data:image/png;base64,not base64!", "invalid message format"),
])
def test_ollama_decodes_image_parts_itself_and_refuses_what_it_cannot(peers, profile, url, message):
    with pytest.raises(openai.BadRequestError) as err:
        peers(profile).client.chat.completions.create(model="lab", messages=image_message(url))
    assert err.value.body == {"message": message, "type": "invalid_request_error", "param": None, "code": None}


@pytest.mark.parametrize("profile", ["ollama", "ollama-legacy"])
def test_ollama_takes_a_base64_png(peers, profile):
    reply = peers(profile).client.chat.completions.create(model="lab", messages=image_message(f"data:image/png;base64,{PNG_1PX}"))
    assert reply.choices[0].message.content


def test_an_image_link_is_not_ollamas_business_on_other_engines(llamacpp, vllm):
    for peer in (llamacpp, vllm):  # they fetch or refuse images elsewhere; the lab engine only reads the text
        assert peer.complete(messages=image_message("https://example.com/cat.png")).status_code == 200


def test_ollama_refuses_an_unknown_reasoning_effort_and_clamps_the_known_ones(ollama_peer, legacy):
    with pytest.raises(openai.BadRequestError) as err:
        ollama_peer.client.chat.completions.create(model="lab-think", messages=HELLO, reasoning_effort="extreme")
    assert err.value.body["message"] == ('invalid reasoning value: "extreme" (must be "minimal", "low", "medium", '
                                         '"high", "xhigh", "ultra", "max", or "none")')
    for effort in ("minimal", "xhigh", "max"):  # OpenAI's and clients' tiers, clamped to Ollama's
        assert ollama_peer.client.chat.completions.create(model="lab-think", messages=HELLO,
                                                          reasoning_effort=effort).choices[0].message.content
    # v0.4.7's request had no reasoning_effort: any value passes unread
    assert legacy.complete(model="lab", reasoning_effort="extreme").status_code == 200


def test_ollama_text_completion_stream_zeroes_usage_on_every_chunk_with_include_usage(ollama_peer):
    chunks = list(ollama_peer.client.completions.create(model="lab", prompt="Hi", max_tokens=3, stream=True,
                                                        stream_options={"include_usage": True}))
    *text_chunks, last = chunks
    assert all(c.choices and (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == (0, 0, 0)
               for c in text_chunks)  # CompleteWriter sets an empty Usage on each (middleware/openai.go)
    assert not last.choices and last.usage.completion_tokens == 3
    plain = list(ollama_peer.client.completions.create(model="lab", prompt="Hi", max_tokens=3, stream=True))
    assert all(c.usage is None for c in plain)


# ---------------------------------------------------------------- logprobs (Ollama v0.12.11+, #12899; OpenAI's chat format)

def check_logprobs(entries: list, tokens: list[str], top: int) -> None:
    """One entry per token, the token most likely at its place, alternatives less likely in turn."""
    assert [e["token"] for e in entries] == tokens
    for e in entries:
        # the ollama client's Logprob has no bytes field; on the wire and in the openai client they are there
        assert e["logprob"] < 0 and e.get("bytes", list(e["token"].encode())) == list(e["token"].encode())
        alternatives = e.get("top_logprobs") or []
        assert len(alternatives) == top
        if top:
            assert alternatives[0]["token"] == e["token"] and alternatives[0]["logprob"] == e["logprob"]
            assert [a["logprob"] for a in alternatives] == sorted((a["logprob"] for a in alternatives), reverse=True)


def test_native_logprobs_through_the_ollama_client(ollama_client):
    asked = dict(model="lab", messages=HELLO, logprobs=True, top_logprobs=3, options={"num_predict": 6})
    whole = ollama_client.chat(**asked)
    parts = list(ollama_client.chat(**asked, stream=True))
    streamed = [lp.model_dump() for part in parts for lp in (part.logprobs or [])]
    check_logprobs(streamed, [part.message.content for part in parts if part.message.content], 3)
    assert [lp.model_dump() for lp in whole.logprobs] == streamed  # deterministic, streamed or not
    assert ollama_client.chat(model="lab", messages=HELLO).logprobs is None  # not asked: left out
    generated = ollama_client.generate(model="lab", prompt="Hello", logprobs=True, options={"num_predict": 4})
    check_logprobs([lp.model_dump() for lp in generated.logprobs], [lp.token for lp in generated.logprobs], 0)
    assert "".join(lp.token for lp in generated.logprobs) == generated.response


def test_v1_chat_logprobs_through_the_openai_client(ollama_peer, ollama_client):
    reply = ollama_peer.client.chat.completions.create(model="lab", messages=HELLO, logprobs=True, top_logprobs=2,
                                                       max_tokens=6)
    entries = [e.model_dump(exclude_none=True) for e in reply.choices[0].logprobs.content]
    check_logprobs(entries, [e["token"] for e in entries], 2)
    assert "".join(e["token"] for e in entries) == reply.choices[0].message.content
    chunks = ollama_peer.chunks(logprobs=True, max_tokens=6)
    streamed = [e.token for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert "".join(streamed) == reply.choices[0].message.content
    # the same numbers as /api/chat for the same conversation
    native = ollama_client.chat(model="lab", messages=HELLO, logprobs=True, options={"num_predict": 6})
    assert [lp.logprob for lp in native.logprobs] == [e["logprob"] for e in entries]
    assert ollama_peer.client.chat.completions.create(model="lab", messages=HELLO).choices[0].logprobs is None


def test_ollama_v1_text_completion_logprobs_come_in_its_chat_format(ollama_peer):
    # FromCompleteRequest: an int logprobs means that many alternatives; ToCompletion sends {"content": [...]}
    reply = ollama_peer.http.post("/completions", json={"model": "lab", "prompt": "Hi", "max_tokens": 4, "logprobs": 2}).json()
    choice = reply["choices"][0]
    check_logprobs(choice["logprobs"]["content"], [e["token"] for e in choice["logprobs"]["content"]], 2)
    plain = ollama_peer.http.post("/completions", json={"model": "lab", "prompt": "Hi", "max_tokens": 4}).json()
    assert "logprobs" not in plain["choices"][0]  # omitempty in Ollama's CompleteChunkChoice


@pytest.mark.parametrize("body", [{"logprobs": True, "top_logprobs": 21}, {"logprobs": True, "top_logprobs": -1}])
def test_ollama_v1_top_logprobs_out_of_range_is_ollamas_400(ollama_peer, body):
    with pytest.raises(openai.BadRequestError) as err:
        ollama_peer.client.chat.completions.create(model="lab", messages=HELLO, **body)
    assert err.value.body["message"] == "top_logprobs must be between 0 and 20"


def test_ollama_legacy_has_no_logprobs(legacy):
    reply = legacy.complete(logprobs=True, top_logprobs=2).json()
    assert "logprobs" not in reply["choices"][0]  # v0.4.7 predates them
