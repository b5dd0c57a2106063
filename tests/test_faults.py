"""Every deliberate fault as a client sees it, on both APIs, through the real peers:
the official `ollama` client, the official `openai` client (max_retries=0) and raw httpx.

A fault is chosen with the model tag (`lab:<fault>`) or for every model with `--fault KIND`.
The wire-fault variants answer with the same content as lab:latest; only the wire breaks.
The quirk variants (no-system-role, tool-loop, tool-args-object) misbehave as models and
templates do: the compat-harness lesson grades learners against them.
"""

import json
import socket
import time

import httpx
import httpx2  # the transport of openai 3.x; its errors are what openai wraps
import ollama
import openai
import pytest

from support import WEATHER_TOOL, sse_events

HELLO = [{"role": "user", "content": "Hello"}]
RUNNER_DIED = "llama runner process has terminated: exit status 2"  # Ollama's own words
MID_STREAM_ERROR = "an error was encountered while running the model"
MID_STREAM_FAULTS = ("malformed-line", "blank-line", "error-mid-stream", "drop-mid-stream")


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def hello_reply(engine) -> str:
    """lab:latest's answer to HELLO: what every fault variant would say if nothing broke."""
    return ollama.Client(host=engine.url).chat("lab", messages=HELLO).message.content


def openai_for(engine, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=engine.v1_url, api_key="compatlab", max_retries=0, **options)


def sse_data(text: str) -> list[str]:
    """The raw `data:` payloads of an SSE body, not decoded, so a malformed one can be inspected."""
    return [line[5:].lstrip() for line in text.split("\n") if line.startswith("data:")]


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def read_until_failure(iterator, failure):
    """Consume a client's stream, expecting `failure`; returns (what came before, the error)."""
    got = []
    with pytest.raises(failure) as raised:
        for item in iterator:
            got.append(item)
    return got, raised.value


def chat_body(model: str, **extra) -> dict:
    return {"model": model, "messages": HELLO, **extra}


def poll(check, seconds: float) -> bool:
    """Poll `check` until it is true or the deadline passes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


# ---------------------------------------------------------------- http-500


@pytest.mark.parametrize("stream", [False, True])
def test_http_500_native_client_raises_response_error(ollama_client, stream):
    with pytest.raises(ollama.ResponseError) as err:
        result = ollama_client.chat("lab:http-500", messages=HELLO, stream=stream)
        if stream:
            list(result)  # the client's stream is lazy: the request goes out on iteration
    assert err.value.status_code == 500
    assert err.value.error == RUNNER_DIED


def test_http_500_native_is_a_status_before_any_stream_byte(http):
    response = http.post("/api/chat", json=chat_body("lab:http-500"))
    assert response.status_code == 500
    # gin's c.JSON, as Ollama sends every JSON reply; not application/x-ndjson
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"error": RUNNER_DIED}


@pytest.mark.parametrize("stream", [False, True])
def test_http_500_v1_openai_client_raises_internal_server_error(openai_client, stream):
    with pytest.raises(openai.InternalServerError) as err:
        openai_client.chat.completions.create(model="lab:http-500", messages=HELLO, stream=stream)
    assert err.value.status_code == 500
    # Ollama's openai.NewError: type by status, param and code null
    assert err.value.body == {"message": RUNNER_DIED, "type": "api_error", "param": None, "code": None}


def test_http_500_v1_is_an_error_envelope_not_an_event_stream(http):
    response = http.post("/v1/chat/completions", json=chat_body("lab:http-500", stream=True))
    assert response.status_code == 500
    # not an event stream: the type Ollama's /v1 writer sets for an error (middleware/openai.go writeError)
    assert response.headers["content-type"] == "application/json"
    assert "data:" not in response.text
    assert response.json() == {"error": {"message": RUNNER_DIED, "type": "api_error", "param": None, "code": None}}


# ---------------------------------------------------------------- malformed-line


def test_malformed_line_native_client_raises_json_decode_error_after_content(ollama_client, hello_reply):
    parts, _ = read_until_failure(ollama_client.chat("lab:malformed-line", messages=HELLO, stream=True),
                                  json.JSONDecodeError)  # the ollama client does not catch it
    text = "".join(p.message.content for p in parts)
    assert parts and text and hello_reply.startswith(text) and text != hello_reply


def test_malformed_line_native_raw_stream_has_a_non_json_line_and_still_ends_with_done(http, hello_reply):
    lines = http.post("/api/chat", json=chat_body("lab:malformed-line")).text.splitlines()
    bad = [i for i, line in enumerate(lines) if not is_json(line)]
    assert len(bad) == 1 and 0 < bad[0] < len(lines) - 1  # mid-stream, after real content
    frames = [json.loads(line) for line in lines if is_json(line)]
    assert frames[-1]["done"] is True and frames[-1]["done_reason"] == "stop"
    # the bad line is an extra: the valid lines still carry the whole reply
    assert "".join(f["message"]["content"] for f in frames) == hello_reply


def test_malformed_line_v1_openai_client_raises_json_decode_error_after_chunks(openai_client, hello_reply):
    stream = openai_client.chat.completions.create(model="lab:malformed-line", messages=HELLO, stream=True)
    chunks, _ = read_until_failure(stream, json.JSONDecodeError)  # sse.json() is not wrapped by openai
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks and hello_reply.startswith(text) and text != hello_reply


def test_malformed_line_v1_raw_stream_has_a_bad_data_payload_and_still_ends_with_done(http):
    payloads = sse_data(http.post("/v1/chat/completions", json=chat_body("lab:malformed-line", stream=True)).text)
    bad = [i for i, p in enumerate(payloads) if p != "[DONE]" and not is_json(p)]
    assert len(bad) == 1 and 0 < bad[0] < len(payloads) - 2
    assert json.loads(payloads[-2])["choices"][0]["finish_reason"] == "stop"
    assert payloads[-1] == "[DONE]"


# ---------------------------------------------------------------- blank-line


def test_blank_line_native_raw_stream_has_an_empty_line_mid_stream(http, hello_reply):
    lines = http.post("/api/chat", json=chat_body("lab:blank-line")).text.split("\n")
    assert lines[-1] == ""  # the body ends with a newline, which is not a blank line
    lines = lines[:-1]
    blank = [i for i, line in enumerate(lines) if line == ""]
    assert len(blank) == 1 and 0 < blank[0] < len(lines) - 1
    frames = [json.loads(line) for line in lines if line]
    assert frames[-1]["done"] is True
    assert "".join(f["message"]["content"] for f in frames) == hello_reply


def test_blank_line_native_client_raises_json_decode_error(ollama_client, hello_reply):
    # httpx's line decoder keeps empty lines; the client calls json.loads("") on it
    parts, error = read_until_failure(ollama_client.chat("lab:blank-line", messages=HELLO, stream=True),
                                      json.JSONDecodeError)
    assert error.doc == ""
    assert parts and hello_reply.startswith("".join(p.message.content for p in parts))


def test_blank_line_v1_raw_stream_is_still_valid_sse(http):
    response = http.post("/v1/chat/completions", json=chat_body("lab:blank-line", stream=True))
    assert "\n\n\n" in response.text  # an extra blank line beyond the event separators
    events = sse_events(response)
    assert events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "stop"


def test_blank_line_v1_openai_client_streams_to_the_end(openai_client, hello_reply):
    chunks = list(openai_client.chat.completions.create(model="lab:blank-line", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == hello_reply
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["stop"]


# ---------------------------------------------------------------- error-mid-stream


def test_error_mid_stream_native_raw_ends_with_error_line_and_no_done_frame(http):
    lines = [json.loads(line) for line in http.post("/api/chat", json=chat_body("lab:error-mid-stream")).text.splitlines()]
    *content, last = lines
    assert last == {"error": MID_STREAM_ERROR}
    assert content and all(frame["done"] is False and frame["message"]["content"] for frame in content)


def test_error_mid_stream_native_client_raises_response_error_with_status_minus_one(ollama_client, hello_reply):
    parts, error = read_until_failure(ollama_client.chat("lab:error-mid-stream", messages=HELLO, stream=True),
                                      ollama.ResponseError)
    assert error.status_code == -1  # an in-band error line: the HTTP status was already 200
    assert error.error == MID_STREAM_ERROR
    assert parts and not any(p.done for p in parts)
    assert hello_reply.startswith("".join(p.message.content for p in parts))


def test_error_mid_stream_v1_ollama_profile_stream_just_stops(http):
    events = sse_events(http.post("/v1/chat/completions", json=chat_body("lab:error-mid-stream", stream=True)))
    assert "[DONE]" not in events
    assert not any("error" in event for event in events)
    assert all(event["choices"][0]["finish_reason"] is None for event in events)
    # Ollama decodes its own error line as an empty response: one empty chunk, then silence
    assert events[-1]["choices"][0]["delta"] == {"content": ""}


def test_error_mid_stream_v1_ollama_profile_openai_client_ends_quietly(openai_client, hello_reply):
    chunks = list(openai_client.chat.completions.create(model="lab:error-mid-stream", messages=HELLO, stream=True))
    assert chunks and all(c.choices[0].finish_reason is None for c in chunks)  # never told it finished
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert hello_reply.startswith(text) and text != hello_reply  # the reply is silently cut short


@pytest.mark.parametrize("profile, tail", [("llamacpp", []), ("vllm", ["[DONE]"])])
def test_error_mid_stream_v1_error_event_under_llamacpp_and_vllm(engines, profile, tail):
    engine = engines.get("--profile", profile)
    response = httpx.post(engine.v1_url + "/chat/completions", json=chat_body("lab:error-mid-stream", stream=True))
    events = sse_events(response)
    assert response.status_code == 200
    # vLLM still closes with [DONE] after its error event; llama-server just stops
    assert events[len(events) - len(tail):] == tail
    *content, last = events[:len(events) - len(tail)]
    assert content and all("choices" in event for event in content)
    assert last["error"]["message"] == MID_STREAM_ERROR
    assert last["error"]["code"] == 500  # both engines give a numeric code
    assert not any(c["choices"][0]["finish_reason"] for c in content)


@pytest.mark.parametrize("profile", ["llamacpp", "vllm"])
def test_error_mid_stream_v1_openai_client_raises_api_error_under_llamacpp_and_vllm(engines, profile):
    client = openai_for(engines.get("--profile", profile))
    stream = client.chat.completions.create(model="lab:error-mid-stream", messages=HELLO, stream=True)
    chunks, error = read_until_failure(stream, openai.APIError)
    assert type(error) is openai.APIError  # not a status error: the status was 200
    assert error.message == MID_STREAM_ERROR and error.body["code"] == 500
    assert any(c.choices[0].delta.content for c in chunks)


# ---------------------------------------------------------------- drop-mid-stream


@pytest.mark.parametrize("path, body", [
    ("/api/chat", chat_body("lab:drop-mid-stream")),
    ("/v1/chat/completions", chat_body("lab:drop-mid-stream", stream=True)),
])
def test_drop_mid_stream_raw_httpx_raises_remote_protocol_error_after_content(http, path, body):
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        with http.stream("POST", path, json=body) as response:
            assert response.status_code == 200
            for data in response.iter_bytes():
                received += data
    assert b'"content":"Turn"' in received  # real content arrived before the cut
    assert b'"done":true' not in received and b"[DONE]" not in received


def test_drop_mid_stream_native_client_raises_httpx_remote_protocol_error(ollama_client, hello_reply):
    # the ollama client wraps only ConnectError; a cut mid-body reaches the caller as httpx's own error
    parts, _ = read_until_failure(ollama_client.chat("lab:drop-mid-stream", messages=HELLO, stream=True),
                                  httpx.RemoteProtocolError)
    assert parts and hello_reply.startswith("".join(p.message.content for p in parts))


def test_drop_mid_stream_v1_openai_client_raises_api_connection_error(openai_client):
    stream = openai_client.chat.completions.create(model="lab:drop-mid-stream", messages=HELLO, stream=True)
    chunks, error = read_until_failure(stream, openai.APIConnectionError)
    assert isinstance(error.__cause__, httpx2.RemoteProtocolError)
    assert chunks and chunks[0].choices[0].delta.content


def test_drop_mid_stream_releases_the_stream_and_the_engine_keeps_serving(engines):
    engine = engines.fresh()  # its own engine, so no other test's stream is counted
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(engine.url + "/api/chat", json=chat_body("lab:drop-mid-stream"))
    assert poll(lambda: httpx.get(engine.url + "/lab/status").json()["active_streams"] == 0, 5)
    assert ollama.Client(host=engine.url).chat("lab", messages=HELLO).done


# ---------------------------------------------------------------- slow-load

SLOW_LOAD_MS = 3000


@pytest.fixture(scope="module")
def slow_engine(engines):
    """lab:slow-load takes 3 s to load; every other model loads at once."""
    return engines.fresh("--slow-load-ms", str(SLOW_LOAD_MS), fast=True)


def test_slow_load_httpx_read_timeout_comes_before_any_byte(slow_engine):
    with httpx.Client(base_url=slow_engine.url, timeout=httpx.Timeout(10, read=1)) as client:
        request = client.build_request("POST", "/api/chat", json=chat_body("lab:slow-load"))
        with pytest.raises(httpx.ReadTimeout):
            client.send(request, stream=True)  # raises while waiting for the status line: nothing arrived


def test_slow_load_ollama_client_with_timeout_raises_httpx_read_timeout(slow_engine):
    # a non-streamed request: the load strikes before any byte either way
    with pytest.raises(httpx.ReadTimeout):
        ollama.Client(host=slow_engine.url, timeout=1).chat("lab:slow-load", messages=HELLO)


def test_slow_load_openai_client_with_timeout_raises_api_timeout_error(slow_engine):
    client = openai_for(slow_engine, timeout=1)
    with pytest.raises(openai.APITimeoutError) as err:
        client.chat.completions.create(model="lab:slow-load", messages=HELLO, stream=True)
    assert isinstance(err.value.__cause__, httpx2.ReadTimeout)


def test_slow_load_abandoned_load_never_finishes(engines):
    engine = engines.fresh("--slow-load-ms", str(SLOW_LOAD_MS), fast=True)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(engine.url + "/api/chat", json=chat_body("lab:slow-load"), timeout=httpx.Timeout(10, read=1))

    def loaded_or_streaming() -> bool:
        status = httpx.get(engine.url + "/lab/status").json()
        resident = [m["name"] for m in httpx.get(engine.url + "/api/ps").json()["models"]]
        return bool(status["active_streams"] or status["loaded"] or resident)

    # Poll past the moment the load would have finished: the model must never show up.
    left = SLOW_LOAD_MS / 1000 + 0.5 - (time.monotonic() - started)
    assert not poll(loaded_or_streaming, left)


def test_slow_load_patient_client_gets_a_normal_reply_with_the_load_time(slow_engine, hello_reply):
    # keep_alive 0 unloads it afterwards, so the timeout tests above see a cold model whatever the order
    reply = ollama.Client(host=slow_engine.url).chat("lab:slow-load", messages=HELLO, keep_alive=0)
    assert reply.done and reply.done_reason == "stop"
    assert reply.load_duration >= SLOW_LOAD_MS * 1e6
    assert reply.message.content == hello_reply


# ---------------------------------------------------------------- --fault KIND: every model


def test_engine_wide_http_500_strikes_other_models_on_the_native_api(engines):
    engine = engines.get("--fault", "http-500")
    with pytest.raises(ollama.ResponseError) as err:
        ollama.Client(host=engine.url).chat("lab-think:latest", messages=HELLO)
    assert err.value.status_code == 500 and err.value.error == RUNNER_DIED


def test_engine_wide_http_500_strikes_other_models_on_v1(engines):
    client = openai_for(engines.get("--fault", "http-500"))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="lab-think:latest", messages=HELLO, stream=True)


def test_engine_wide_http_500_leaves_the_daemon_routes_up(engines):
    # the runner dies, not the daemon: listing models still works
    client = ollama.Client(host=engines.get("--fault", "http-500").url)
    assert "lab:latest" in [m.model for m in client.list().models]


def test_engine_wide_error_mid_stream_strikes_lab_latest(engines):
    client = ollama.Client(host=engines.get("--fault", "error-mid-stream").url)
    parts, error = read_until_failure(client.chat("lab:latest", messages=HELLO, stream=True), ollama.ResponseError)
    assert parts and error.status_code == -1 and error.error == MID_STREAM_ERROR


def test_engine_wide_error_mid_stream_cuts_lab_latest_on_v1(engines):
    client = openai_for(engines.get("--fault", "error-mid-stream"))
    chunks = list(client.chat.completions.create(model="lab", messages=HELLO, stream=True))
    assert chunks and not any(c.choices[0].finish_reason for c in chunks)


# ---------------------------------------------------------------- faults in non-streamed requests


@pytest.mark.parametrize("fault", MID_STREAM_FAULTS)
def test_mid_stream_faults_leave_non_streamed_native_replies_whole(ollama_client, hello_reply, fault):
    reply = ollama_client.chat(f"lab:{fault}", messages=HELLO, stream=False)
    assert reply.done and reply.done_reason == "stop"
    assert reply.message.content == hello_reply


@pytest.mark.parametrize("fault", MID_STREAM_FAULTS)
def test_mid_stream_faults_leave_non_streamed_v1_replies_whole(openai_client, hello_reply, fault):
    completion = openai_client.chat.completions.create(model=f"lab:{fault}", messages=HELLO)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == hello_reply


# ---------------------------------------------------------------- /v1/completions streams


def completions_body(model: str) -> dict:
    return {"model": model, "prompt": "Hello", "stream": True}


def test_completions_error_mid_stream_ends_with_an_empty_text_chunk(http):
    events = sse_events(http.post("/v1/completions", json=completions_body("lab:error-mid-stream")))
    assert "[DONE]" not in events
    assert all(e["object"] == "text_completion" and e["choices"][0]["finish_reason"] is None for e in events)
    assert events[-1]["choices"] == [{"text": "", "index": 0, "finish_reason": None}]  # a text chunk, no `delta`


def test_completions_error_mid_stream_openai_client_ends_quietly(openai_client):
    chunks = list(openai_client.completions.create(model="lab:error-mid-stream", prompt="Hello", stream=True))
    assert all(isinstance(c.choices[0].text, str) for c in chunks)
    assert not any(c.choices[0].finish_reason for c in chunks)


def test_completions_drop_mid_stream_openai_client_raises_api_connection_error(openai_client):
    stream = openai_client.completions.create(model="lab:drop-mid-stream", prompt="Hello", stream=True)
    chunks, _ = read_until_failure(stream, openai.APIConnectionError)
    assert chunks and chunks[0].choices[0].text


def test_completions_malformed_line_openai_client_raises_json_decode_error(openai_client):
    stream = openai_client.completions.create(model="lab:malformed-line", prompt="Hello", stream=True)
    chunks, _ = read_until_failure(stream, json.JSONDecodeError)
    assert chunks


# ---------------------------------------------------------------- daemon down


@pytest.fixture()
def dead_url() -> str:
    """A loopback port where nothing listens (bound to learn a free one, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_daemon_down_ollama_client_raises_connection_error(dead_url):
    with pytest.raises(ConnectionError, match="Failed to connect to Ollama"):  # the builtin, not ResponseError
        ollama.Client(host=dead_url).chat("lab", messages=HELLO)


def test_daemon_down_ollama_client_streaming_raises_httpx_connect_error(dead_url):
    # ollama 0.6.3 wraps ConnectError only on its non-streamed path; a stream lets httpx's error through
    with pytest.raises(httpx.ConnectError):
        list(ollama.Client(host=dead_url).chat("lab", messages=HELLO, stream=True))


def test_daemon_down_openai_client_raises_api_connection_error(dead_url):
    client = openai.OpenAI(base_url=dead_url + "/v1", api_key="compatlab", max_retries=0)
    with pytest.raises(openai.APIConnectionError) as err:
        client.chat.completions.create(model="lab", messages=HELLO)
    assert isinstance(err.value.__cause__, httpx2.ConnectError)


# ---------------------------------------------------------------- model and template quirks

SYSTEM_FIRST = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
WEATHER_ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_no_system_role_rejects_a_system_message_on_v1_in_the_profile_shape(openai_client):
    with pytest.raises(openai.BadRequestError) as err:
        openai_client.chat.completions.create(model="lab:no-system-role", messages=SYSTEM_FIRST)
    assert err.value.status_code == 400 and "System role not supported" in err.value.message


def test_no_system_role_rejects_a_system_message_on_the_native_api(ollama_client):
    with pytest.raises(ollama.ResponseError) as err:
        ollama_client.chat("lab:no-system-role", messages=SYSTEM_FIRST)
    assert err.value.status_code == 400 and err.value.error == "System role not supported"


def test_no_system_role_answers_a_conversation_without_one(openai_client, hello_reply):
    completion = openai_client.chat.completions.create(model="lab:no-system-role", messages=HELLO)
    assert completion.choices[0].message.content == hello_reply


def _after_tool_result(first) -> list:
    call = first.choices[0].message.tool_calls[0]
    return [*WEATHER_ASK, first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}]


def test_tool_loop_calls_the_tool_again_after_its_result(openai_client):
    first = openai_client.chat.completions.create(model="lab:tool-loop", messages=WEATHER_ASK, tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    second = openai_client.chat.completions.create(model="lab:tool-loop", messages=_after_tool_result(first),
                                                   tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "tool_calls"
    assert second.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_lab_latest_answers_in_text_after_the_tool_result(openai_client):
    first = openai_client.chat.completions.create(model="lab", messages=WEATHER_ASK, tools=[WEATHER_TOOL])
    second = openai_client.chat.completions.create(model="lab", messages=_after_tool_result(first),
                                                   tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop" and not second.choices[0].message.tool_calls
    assert "18 degrees" in second.choices[0].message.content


def test_tool_args_object_sends_arguments_as_an_object_on_v1(http):
    body = {"model": "lab:tool-args-object", "messages": WEATHER_ASK, "tools": [WEATHER_TOOL]}
    call = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["tool_calls"][0]
    assert isinstance(call["function"]["arguments"], dict) and call["function"]["arguments"]["city"] == "Paris"


@pytest.mark.parametrize("profile", ["ollama", "llamacpp", "vllm"])
def test_tool_args_object_streams_each_call_whole_as_an_object(engines, profile):
    body = {"model": "lab:tool-args-object", "messages": WEATHER_ASK, "tools": [WEATHER_TOOL], "stream": True}
    events = sse_events(httpx.post(engines.get("--profile", profile).url + "/v1/chat/completions", json=body))
    calls = [c for e in events[:-1] for c in (e["choices"][0]["delta"].get("tool_calls") or []) if e["choices"]]
    assert len(calls) == 1 and calls[0]["function"]["arguments"]["city"] == "Paris"


def test_ollama_legacy_ignores_a_json_schema_response_format(engines):
    client = openai_for(engines.get("--profile", "ollama-legacy"))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    completion = client.chat.completions.create(
        model="lab", messages=HELLO,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}})
    assert not is_json(completion.choices[0].message.content)  # v0.4.7 knew only json_object
