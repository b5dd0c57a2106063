"""Ollama's native API through the official `ollama` client and raw httpx."""

import json
import re

import jsonschema
import ollama
import pytest

from support import TIME_TOOL, WEATHER_TOOL, ndjson_lines

METRICS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
           "eval_count", "eval_duration")


def test_root_version_tags(http, ollama_client):
    assert http.get("/").text == "Ollama is running"
    assert http.head("/").status_code == 200
    assert http.get("/api/version").json()["version"]
    names = [m.model for m in ollama_client.list().models]
    assert {"lab:latest", "lab-think:latest", "lab-embed:latest", "lab:drop-mid-stream"} <= set(names)
    entry = http.get("/api/tags").json()["models"][0]
    assert set(entry) >= {"name", "model", "modified_at", "size", "digest", "details"}
    assert not entry["digest"].startswith("sha256:")  # bare hex, as Ollama lists it


def test_show(ollama_client):
    shown = ollama_client.show("lab-think")
    assert "thinking" in shown.capabilities and "tools" in shown.capabilities
    assert shown.details.family == "lab-think"
    with pytest.raises(ollama.ResponseError) as missing:
        ollama_client.show("nope")
    assert missing.value.status_code == 404 and missing.value.error == "model 'nope' not found"


def test_native_json_replies_carry_gins_content_type(http):
    # gin's c.JSON, for replies and errors alike [ollama-api.md §2]
    for response in (http.get("/api/tags"), http.post("/api/show", json={"model": "nope"}),
                     http.post("/api/chat", json={"model": "lab", "messages": [], "stream": False})):
        assert response.headers["content-type"] == "application/json; charset=utf-8", response.text


def test_go_leaves_out_what_is_empty_and_writes_its_own_times(http):
    # api.Metrics and GenerateResponse.Context are `omitempty`; raw mode returns no context
    # (GenerateHandler); time.Time is RFC 3339 with "Z" and no trailing zeros (api/types.go@v0.32.15)
    nothing = http.post("/api/generate", json={"model": "lab", "prompt": "hi", "stream": False,
                                               "options": {"num_predict": 0}}).json()
    assert nothing["response"] == "" and not {"eval_count", "eval_duration", "context"} & set(nothing)
    raw = http.post("/api/generate", json={"model": "lab", "prompt": "hi", "raw": True, "stream": False}).json()
    assert raw["response"] and "context" not in raw and raw["eval_count"] > 0
    cooked = http.post("/api/generate", json={"model": "lab", "prompt": "hi", "stream": False}).json()
    assert len(cooked["context"]) == cooked["eval_count"]
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?(Z|[+-]\d\d:\d\d)$")
    tags = http.get("/api/tags").json()["models"]
    assert all(stamp.match(m["modified_at"]) for m in tags) and stamp.match(cooked["created_at"])
    # the list's details carry the lengths (server/model_list_cache.go); /api/show's do not
    by_name = {m["name"]: m["details"] for m in tags}
    assert by_name["lab:latest"]["context_length"] > 0 and "embedding_length" not in by_name["lab:latest"]
    assert by_name["lab-embed:latest"]["embedding_length"] == 384
    assert "context_length" not in http.post("/api/show", json={"model": "lab"}).json()["details"]


def test_go_omissions_through_the_ollama_client(ollama_client):
    raw = ollama_client.generate(model="lab", prompt="hi", raw=True, options={"num_predict": 3})
    assert raw.context is None and raw.eval_count == 3  # raw mode: no context
    nothing = ollama_client.generate(model="lab", prompt="hi", options={"num_predict": 0})
    assert nothing.eval_count is None and nothing.eval_duration is None and nothing.context is None
    assert nothing.load_duration > 0  # counted from the request to a loaded model, never 0


def test_chat_stream_shape(http):
    response = http.post("/api/chat", json={"model": "lab", "messages": [{"role": "user", "content": "Hello"}]})
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text.endswith("\n") and "data:" not in response.text
    lines = ndjson_lines(response)
    *chunks, done = lines
    assert all(c["done"] is False and c["message"]["role"] == "assistant" for c in chunks)
    assert all(not set(METRICS) & set(c) for c in chunks)
    assert done["done"] is True and done["done_reason"] == "stop" and done["message"]["content"] == ""
    assert list(done)[-6:] == list(METRICS)  # Ollama's key order
    assert done["eval_count"] == len(chunks)  # one token per chunk
    assert all(done[m] > 0 for m in METRICS if m != "load_duration")
    assert done["created_at"].endswith("Z")


def test_chat_stream_through_official_client(ollama_client):
    parts = list(ollama_client.chat("lab", messages=[{"role": "user", "content": "Hello there"}], stream=True))
    assert parts[-1].done and parts[-1].done_reason == "stop"
    text = "".join(p.message.content for p in parts)
    whole = ollama_client.chat("lab", messages=[{"role": "user", "content": "Hello there"}])
    assert whole.message.content == text  # stream or not, the same reply
    assert whole.eval_count == parts[-1].eval_count == len(parts) - 1


def test_tool_loop(ollama_client, http):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = ollama_client.chat("lab", messages=messages, tools=[TIME_TOOL, WEATHER_TOOL], stream=False)
    (call,) = first.message.tool_calls
    assert call.function.name == "get_weather"  # the tool the user named
    assert call.function.arguments == {"city": "Paris", "unit": call.function.arguments["unit"]}
    # ollama-python 0.6 has no `id` field on ToolCall, so read the id off the wire
    raw = http.post("/api/chat", json={"model": "lab", "messages": messages, "stream": False,
                                       "tools": [TIME_TOOL, WEATHER_TOOL]}).json()["message"]["tool_calls"][0]
    assert raw["id"].startswith("call_") and len(raw["id"]) == 13 and raw["function"]["index"] == 0
    messages += [first.message, {"role": "tool", "content": "11 degrees celsius", "tool_name": "get_weather"}]
    second = ollama_client.chat("lab", messages=messages, tools=[TIME_TOOL, WEATHER_TOOL], stream=False)
    assert not second.message.tool_calls
    assert "11 degrees celsius" in second.message.content


def test_tool_call_streams_as_whole_object(http):
    lines = ndjson_lines(http.post("/api/chat", json={
        "model": "lab", "messages": [{"role": "user", "content": "time please"}], "tools": [TIME_TOOL]}))
    calls = [line for line in lines if line["message"].get("tool_calls")]
    assert len(calls) == 1 and calls[0]["done"] is False
    assert isinstance(calls[0]["message"]["tool_calls"][0]["function"]["arguments"], dict)
    assert lines[-1]["done"] is True


SCHEMA = {
    "type": "object",
    "$defs": {"city": {"type": "object", "properties": {"name": {"type": "string"},
                                                        "population": {"type": "integer", "minimum": 0}},
                       "required": ["name", "population"]}},
    "properties": {"cities": {"type": "array", "items": {"$ref": "#/$defs/city"}, "minItems": 2},
                   "kind": {"enum": ["capital", "port"]}, "version": {"const": 2}},
    "required": ["cities", "kind", "version"],
}


@pytest.mark.parametrize("stream", [False, True])
def test_structured_output(ollama_client, stream):
    result = ollama_client.chat("lab", messages=[{"role": "user", "content": "List cities"}],
                                format=SCHEMA, stream=stream, options={"stop": ["}"]})
    text = "".join(p.message.content for p in result) if stream else result.message.content
    jsonschema.validate(json.loads(text), SCHEMA)  # the stop sequence did not cut the JSON


def test_json_mode(ollama_client):
    reply = ollama_client.chat("lab", messages=[{"role": "user", "content": "hi"}], format="json")
    assert isinstance(json.loads(reply.message.content), dict)


def test_num_predict_and_stop(ollama_client):
    cut = ollama_client.chat("lab", messages=[{"role": "user", "content": "Tell me 50 words"}],
                             options={"num_predict": 5})
    assert cut.done_reason == "length" and cut.eval_count == 5
    full = ollama_client.chat("lab", messages=[{"role": "user", "content": "Tell me 50 words"}])
    word = full.message.content.split()[6]
    stopped = ollama_client.chat("lab", messages=[{"role": "user", "content": "Tell me 50 words"}],
                                 options={"stop": [word]})
    assert stopped.done_reason == "stop" and word not in stopped.message.content
    assert full.message.content.startswith(stopped.message.content)


def test_thinking(ollama_client):
    parts = list(ollama_client.chat("lab-think", messages=[{"role": "user", "content": "Why?"}], stream=True))
    kinds = ["thinking" if p.message.thinking else "content" for p in parts if p.message.thinking or p.message.content]
    assert kinds[0] == "thinking" and "thinking" not in kinds[kinds.index("content"):]
    off = ollama_client.chat("lab-think", messages=[{"role": "user", "content": "Why?"}], think=False)
    assert not off.message.thinking and off.message.content
    with pytest.raises(ollama.ResponseError) as refused:
        ollama_client.chat("lab", messages=[{"role": "user", "content": "Why?"}], think=True)
    assert refused.value.status_code == 400 and "does not support thinking" in refused.value.error


def test_generate(ollama_client):
    whole = ollama_client.generate("lab", prompt="Say something")
    parts = list(ollama_client.generate("lab", prompt="Say something", stream=True))
    assert whole.response == "".join(p.response for p in parts)
    assert parts[-1].done and parts[-1].context and whole.eval_count == len(parts) - 1


def test_embed(ollama_client):
    result = ollama_client.embed("lab-embed", input=["one", "two"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0]) == 384
    assert abs(sum(v * v for v in result.embeddings[0]) - 1) < 1e-5
    again = ollama_client.embed("lab-embed", input="one")
    assert again.embeddings[0] == result.embeddings[0]
    assert len(ollama_client.embed("lab-embed", input="one", dimensions=8).embeddings[0]) == 8
    with pytest.raises(ollama.ResponseError):
        ollama_client.embed("lab", input="chat models do not embed")


def test_load_unload_and_ps(engines):
    engine = engines.fresh()
    client = ollama.Client(host=engine.url)
    assert client.ps().models == []
    loaded = client.chat("lab", messages=[])
    assert loaded.done_reason == "load"
    assert [m.model for m in client.ps().models] == ["lab:latest"]
    unloaded = client.chat("lab", messages=[], keep_alive=0)
    assert unloaded.done_reason == "unload" and client.ps().models == []
    client.chat("lab-think", messages=[{"role": "user", "content": "hi"}], keep_alive=0)
    assert client.ps().models == []  # keep_alive 0: unloaded right after the reply
    client.chat("lab", messages=[{"role": "user", "content": "hi"}], keep_alive="1h")
    assert client.ps().models[0].expires_at is not None


def test_load_time_is_measured(engines):
    engine = engines.fresh("--load-ms", "300", "--tokens-per-second", "0", "--ttft-ms", "0", fast=False)
    client = ollama.Client(host=engine.url)
    first = client.chat("lab", messages=[{"role": "user", "content": "hi"}])
    second = client.chat("lab", messages=[{"role": "user", "content": "hi"}])
    # loaded already: microseconds, never 0 (Ollama measures from the request to a loaded runner)
    assert first.load_duration >= 300e6 and 0 < second.load_duration < 50e6
    assert first.total_duration >= first.load_duration
