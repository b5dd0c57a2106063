"""Bad input never gets a 5xx or a traceback: each is a 4xx in the shape of the API that was called.

Native /api/*: {"error": "<message>"}. Unknown routes and wrong methods, /api or /v1: gin's plain text.
/v1/*: Ollama's OpenAI envelope {"error": {"message", "type", "param", "code"}}, the type set by the
status [ollama-api.md §4.6]. Rows marked "ok" are odd but valid requests that must succeed.
"""

import json

import ollama
import openai
import pytest

NATIVE, OPENAI, PLAIN, OK = "native", "openai", "plain", "ok"
HI = [{"role": "user", "content": "hi"}]
CHAT = {"model": "lab", "messages": HI, "stream": False}
LIMIT = 4 * 1024 * 1024  # EngineSettings.max_body_bytes
OPENAI_TYPES = {400: "invalid_request_error", 404: "not_found_error", 413: "invalid_request_error"}


def big_body() -> bytes:
    return json.dumps({"model": "lab", "prompt": "a" * (LIMIT + 1024)}).encode()


def chunked(body: bytes):
    """A generator body: httpx sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start:start + 64 * 1024]


def v1_chat(**extra) -> dict:
    return {"model": "lab", "messages": HI, **extra}


def row(id, method, path, status, shape, fragment, *, json=None, content=None, headers=None):
    """content may be a function: a generator body is used up once sent, so it is made per call."""
    request = {"json": json} if content is None else {"content": content}
    if headers:
        request["headers"] = headers
    return pytest.param(method, path, request, status, shape, fragment, id=id)


ROWS = [
    # ---------------------------------------------------------------- native: the body itself
    row("api-empty-body", "POST", "/api/chat", 400, NATIVE, "missing request body", content=b""),
    row("api-non-json", "POST", "/api/chat", 400, NATIVE, "invalid JSON", content=b"hello"),
    row("api-json-array", "POST", "/api/generate", 400, NATIVE, "must be a JSON object", json=[CHAT]),
    # `curl -d` sends a form type; Ollama reads the body as JSON whatever the Content-Type says
    row("api-form-content-type", "POST", "/api/chat", 200, OK, '"done":true', content=json.dumps(CHAT),
        headers={"Content-Type": "application/x-www-form-urlencoded"}),
    # ---------------------------------------------------------------- native: wrong types and values
    row("api-messages-string", "POST", "/api/chat", 400, NATIVE, "messages: Input should be a valid list",
        json={**CHAT, "messages": "hi"}),
    row("api-content-number", "POST", "/api/chat", 400, NATIVE, "messages.0.content: Input should be a valid string",
        json={**CHAT, "messages": [{"role": "user", "content": 42}]}),
    row("api-stream-maybe", "POST", "/api/chat", 400, NATIVE, "stream: Input should be a valid boolean",
        json={**CHAT, "stream": "maybe"}),
    row("api-temperature-hot", "POST", "/api/chat", 400, NATIVE, 'option "temperature" must be of type float32',
        json={**CHAT, "options": {"temperature": "hot"}}),
    row("api-stop-number", "POST", "/api/generate", 400, NATIVE, 'option "stop" must be of type array',
        json={"model": "lab", "prompt": "hi", "options": {"stop": 5}}),
    row("api-stop-numbers", "POST", "/api/generate", 400, NATIVE, 'option "stop" must be of an array of strings',
        json={"model": "lab", "prompt": "hi", "options": {"stop": [5]}}),
    # a JSON number is a float64 to Go, and FromMap truncates it into an integer option
    row("api-num-predict-fraction", "POST", "/api/generate", 200, OK, '"eval_count":2,',
        json={"model": "lab", "prompt": "hi", "stream": False, "options": {"num_predict": 2.7}}),
    row("api-tools-not-list", "POST", "/api/chat", 400, NATIVE, "tools: Input should be a valid list",
        json={**CHAT, "tools": {"type": "function"}}),
    row("api-think-ultra", "POST", "/api/chat", 400, NATIVE, 'invalid think value: "ultra"',
        json={**CHAT, "model": "lab-think", "think": "ultra"}),
    row("api-keep-alive-forever", "POST", "/api/generate", 400, NATIVE, 'time: invalid duration "forever"',
        json={"model": "lab", "prompt": "hi", "keep_alive": "forever"}),
    row("api-format-xml", "POST", "/api/chat", 400, NATIVE, 'invalid format: "xml"', json={**CHAT, "format": "xml"}),
    row("api-format-number", "POST", "/api/generate", 400, NATIVE, "invalid request: format",
        json={"model": "lab", "prompt": "hi", "format": 42}),
    row("api-invalid-role", "POST", "/api/chat", 400, NATIVE, 'invalid role "wizard"',
        json={**CHAT, "messages": [{"role": "wizard", "content": "hi"}]}),
    row("api-embed-input-numbers", "POST", "/api/embed", 400, NATIVE, "invalid request: input",
        json={"model": "lab-embed", "input": [1, 2, 3]}),
    # ---------------------------------------------------------------- native: models
    row("api-missing-model", "POST", "/api/chat", 400, NATIVE, "model is required", json={"messages": HI}),
    # GenerateHandler and EmbedHandler fall back to a 404 for an empty name (writeModelRefParseError)
    row("api-generate-missing-model", "POST", "/api/generate", 404, NATIVE, "model '' not found", json={"prompt": "hi"}),
    row("api-embed-missing-model", "POST", "/api/embed", 404, NATIVE, "model '' not found", json={"input": "hi"}),
    row("api-invalid-model-name", "POST", "/api/chat", 400, NATIVE, "invalid model name",
        json={**CHAT, "model": "my model"}),
    row("api-top-logprobs-21", "POST", "/api/chat", 400, NATIVE, "top_logprobs must be between 0 and 20",
        json={**CHAT, "logprobs": True, "top_logprobs": 21}),
    row("api-top-logprobs-negative", "POST", "/api/generate", 400, NATIVE, "top_logprobs must be between 0 and 20",
        json={"model": "lab", "prompt": "hi", "top_logprobs": -1}),
    row("api-show-missing-model", "POST", "/api/show", 400, NATIVE, "model is required", json={}),
    row("api-chat-unknown-model", "POST", "/api/chat", 404, NATIVE, "model 'nope' not found",
        json={**CHAT, "model": "nope"}),
    row("api-generate-unknown-model", "POST", "/api/generate", 404, NATIVE, "model 'nope' not found",
        json={"model": "nope", "prompt": "hi"}),
    row("api-show-unknown-model", "POST", "/api/show", 404, NATIVE, "model 'nope' not found", json={"model": "nope"}),
    row("api-embed-unknown-model", "POST", "/api/embed", 404, NATIVE, "model 'nope' not found",
        json={"model": "nope", "input": "x"}),
    # the capability in the handler's words, the name as asked (server/routes.go@v0.32.15)
    row("api-chat-on-embedding-model", "POST", "/api/chat", 400, NATIVE,
        '"lab-embed" does not support chat', json={**CHAT, "model": "lab-embed"}),
    row("api-generate-on-embedding-model", "POST", "/api/generate", 400, NATIVE,
        '"lab-embed" does not support generate', json={"model": "lab-embed", "prompt": "hi"}),
    row("api-suffix-without-insert", "POST", "/api/generate", 400, NATIVE, "does not support insert",
        json={"model": "lab", "prompt": "def f(", "suffix": "    return 1"}),
    # a departure, named in the README: Ollama's EmbedHandler asks no capability
    row("api-embed-on-chat-model", "POST", "/api/embed", 400, NATIVE, '"lab" does not support embedding',
        json={"model": "lab", "input": "x"}),
    # ---------------------------------------------------------------- native: size, routes, methods
    row("api-oversized", "POST", "/api/generate", 413, NATIVE, "request body too large", content=big_body()),
    row("api-oversized-chunked", "POST", "/api/generate", 413, NATIVE, "request body too large",
        content=lambda: chunked(big_body())),
    row("api-unknown-route", "POST", "/api/nope", 404, PLAIN, "404 page not found", json={}),
    row("api-wrong-method", "GET", "/api/chat", 405, PLAIN, "405 method not allowed"),
    # ---------------------------------------------------------------- native: found by fuzzing and probing
    # Python's json reads NaN/Infinity/1e400; int() of them raised (500)
    row("api-seed-infinity", "POST", "/api/chat", 400, NATIVE, 'option "seed" must be of type integer',
        content=json.dumps({**CHAT, "options": {"seed": float("inf")}})),
    row("api-num-predict-nan", "POST", "/api/generate", 400, NATIVE, 'option "num_predict" must be of type integer',
        content=b'{"model": "lab", "prompt": "hi", "options": {"num_predict": NaN}}'),
    row("api-schema-bound-1e400", "POST", "/api/chat", 400, NATIVE, "cannot produce output for this schema",
        content=b'{"model": "lab", "messages": [{"role": "user", "content": "hi"}], "stream": false,'
                b' "format": {"type": "integer", "minimum": 1e400}}'),
    # a schema only NaN satisfies: answering 200 with "NaN" would not be JSON
    row("api-schema-minimum-nan", "POST", "/api/chat", 400, NATIVE, "cannot produce output for this schema",
        content=b'{"model": "lab", "messages": [{"role": "user", "content": "hi"}], "stream": false,'
                b' "format": {"minimum": NaN}}'),
    # a duration Go cannot hold; it used to be kept, and broke /api/ps (see test below)
    row("api-keep-alive-overflow", "POST", "/api/generate", 400, NATIVE, 'time: invalid duration "99999999999999h"',
        json={"model": "lab", "prompt": "hi", "keep_alive": "99999999999999h"}),
    # a lone surrogate escape could not be encoded back to UTF-8 (500); Go reads it as U+FFFD
    row("api-lone-surrogate-model", "POST", "/api/chat", 400, NATIVE, "invalid model name",
        content=b'{"model": "\\ud800", "messages": []}'),
    row("api-lone-surrogate-content", "POST", "/api/chat", 200, OK, 'You said \\"\ufffd',
        content=b'{"model": "lab", "stream": false, "messages": [{"role": "user", "content": "\\udc00"}]}'),
    # FastAPI's own 400 for unparseable bodies came back as plain text
    row("api-invalid-utf8", "POST", "/api/chat", 400, NATIVE, "error parsing the body", content=b'{"model": "\xff"}'),
    row("api-deep-nesting", "POST", "/api/chat", 400, NATIVE, "error parsing the body",
        content=b"[" * 100_000 + b"]" * 100_000),
    # ---------------------------------------------------------------- /v1: the body itself
    row("v1-empty-body", "POST", "/v1/chat/completions", 400, OPENAI, "missing request body", content=b""),
    row("v1-non-json", "POST", "/v1/chat/completions", 400, OPENAI, "invalid JSON", content=b"{model: lab"),
    row("v1-json-array", "POST", "/v1/completions", 400, OPENAI, "must be a JSON object", json=[]),
    row("v1-form-content-type", "POST", "/v1/chat/completions", 200, OK, '"object":"chat.completion"',
        content=json.dumps(v1_chat()), headers={"Content-Type": "application/x-www-form-urlencoded"}),
    row("v1-missing-model", "POST", "/v1/chat/completions", 400, OPENAI, "model: Field required",
        json={"messages": HI}),
    row("v1-unknown-model", "POST", "/v1/chat/completions", 404, OPENAI, "model 'nope' not found",
        json=v1_chat(model="nope")),
    row("v1-chat-on-embedding-model", "POST", "/v1/chat/completions", 400, OPENAI,
        '"lab-embed" does not support chat', json=v1_chat(model="lab-embed")),
    row("v1-completions-suffix-without-insert", "POST", "/v1/completions", 400, OPENAI, "does not support insert",
        json={"model": "lab", "prompt": "def f(", "suffix": "    return 1"}),
    row("v1-embeddings-on-chat-model", "POST", "/v1/embeddings", 400, OPENAI,
        '"lab" does not support embedding', json={"model": "lab", "input": "x"}),
    # ---------------------------------------------------------------- /v1: messages and tools
    row("v1-empty-messages", "POST", "/v1/chat/completions", 400, OPENAI, "[] is too short - 'messages'",
        json=v1_chat(messages=[])),
    row("v1-invalid-role", "POST", "/v1/chat/completions", 400, OPENAI, "Invalid value: 'wizard'",
        json=v1_chat(messages=[{"role": "wizard", "content": "hi"}])),
    row("v1-content-number", "POST", "/v1/chat/completions", 400, OPENAI, "messages.0.content",
        json=v1_chat(messages=[{"role": "user", "content": 42}])),
    row("v1-bad-tool-call-arguments", "POST", "/v1/chat/completions", 400, OPENAI, "invalid tool call arguments",
        json=v1_chat(messages=[*HI, {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}])),
    row("v1-tool-choice-undefined", "POST", "/v1/chat/completions", 400, OPENAI, "not defined: 'get_time'",
        json=v1_chat(tools=[{"type": "function", "function": {"name": "get_weather"}}],
                     tool_choice={"type": "function", "function": {"name": "get_time"}})),
    # ---------------------------------------------------------------- /v1: parameter ranges
    row("v1-temperature-3", "POST", "/v1/chat/completions", 400, OPENAI, "Invalid 'temperature'",
        json=v1_chat(temperature=3)),
    row("v1-temperature-negative", "POST", "/v1/chat/completions", 400, OPENAI, "Invalid 'temperature'",
        json=v1_chat(temperature=-1)),
    row("v1-top-p-negative", "POST", "/v1/chat/completions", 400, OPENAI, "Invalid 'top_p'", json=v1_chat(top_p=-0.5)),
    row("v1-top-p-1.5", "POST", "/v1/completions", 400, OPENAI, "Invalid 'top_p'",
        json={"model": "lab", "prompt": "hi", "top_p": 1.5}),
    row("v1-frequency-penalty-5", "POST", "/v1/chat/completions", 400, OPENAI, "Invalid 'frequency_penalty'",
        json=v1_chat(frequency_penalty=5)),
    row("v1-n-0", "POST", "/v1/chat/completions", 400, OPENAI, "Invalid 'n'", json=v1_chat(n=0)),
    row("v1-best-of-below-n", "POST", "/v1/completions", 400, OPENAI, "Invalid 'best_of'",
        json={"model": "lab", "prompt": "hi", "n": 2, "best_of": 1}),
    row("v1-stream-options-without-stream", "POST", "/v1/chat/completions", 400, OPENAI,
        "'stream_options' parameter is only allowed when 'stream' is enabled",
        json=v1_chat(stream_options={"include_usage": True})),
    row("v1-response-format-sound", "POST", "/v1/chat/completions", 400, OPENAI, "'response_format.type': 'sound'",
        json=v1_chat(response_format={"type": "sound"})),
    row("v1-json-schema-without-schema", "POST", "/v1/chat/completions", 400, OPENAI, "json_schema.schema",
        json=v1_chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}})),
    # ---------------------------------------------------------------- /v1: embeddings
    row("v1-encoding-format-hex", "POST", "/v1/embeddings", 400, OPENAI, "'encoding_format' = hex",
        json={"model": "lab-embed", "input": "x", "encoding_format": "hex"}),
    row("v1-dimensions-0", "POST", "/v1/embeddings", 400, OPENAI, "dimensions must be between 1 and 384",
        json={"model": "lab-embed", "input": "x", "dimensions": 0}),
    row("v1-dimensions-10000", "POST", "/v1/embeddings", 400, OPENAI, "dimensions must be between 1 and 384",
        json={"model": "lab-embed", "input": "x", "dimensions": 10000}),
    row("v1-embeddings-input-tokens", "POST", "/v1/embeddings", 400, OPENAI, "invalid request: input",
        json={"model": "lab-embed", "input": [1, 2, 3]}),
    # ---------------------------------------------------------------- /v1: size, routes, methods
    row("v1-oversized", "POST", "/v1/completions", 413, OPENAI, "request body too large", content=big_body()),
    row("v1-oversized-chunked", "POST", "/v1/completions", 413, OPENAI, "request body too large",
        content=lambda: chunked(big_body())),
    # gin routes /v1 as it routes /api: its plain text comes before any /v1 middleware runs
    row("v1-unknown-route", "POST", "/v1/nope", 404, PLAIN, "404 page not found", json={}),
    row("v1-unknown-model-card", "GET", "/v1/models/nope", 404, OPENAI, "model 'nope' not found"),
    row("v1-wrong-method", "GET", "/v1/chat/completions", 405, PLAIN, "405 method not allowed"),
    # ---------------------------------------------------------------- /v1: found by probing
    row("v1-schema-bound-1e400", "POST", "/v1/chat/completions", 400, OPENAI, "cannot produce output",
        content=b'{"model": "lab", "messages": [{"role": "user", "content": "hi"}], "response_format":'
                b' {"type": "json_schema", "json_schema": {"schema": {"type": "integer", "minimum": 1e400}}}}'),
    row("v1-lone-surrogate-prompt", "POST", "/v1/completions", 200, OK, 'You said \\"\ufffd',
        content=b'{"model": "lab", "prompt": "\\ud800"}'),
    row("v1-invalid-utf8", "POST", "/v1/completions", 400, OPENAI, "error parsing the body",
        content=b'{"model": "\xff"}'),
]


@pytest.fixture(scope="module")
def stderr_start(engine) -> int:
    """Where this module's part of the engine's log begins (the engine is shared by the session)."""
    return len(engine.stderr())


@pytest.mark.parametrize("method, path, request_kwargs, status, shape, fragment", ROWS)
def test_bad_request(http, engine, stderr_start, method, path, request_kwargs, status, shape, fragment):
    before = len(engine.stderr())
    streamed = callable(request_kwargs.get("content"))
    if streamed:
        request_kwargs = {**request_kwargs, "content": request_kwargs["content"]()}
    response = http.request(method, path, **request_kwargs)
    if streamed:  # the size guard must count bytes, not trust a header
        assert "content-length" not in response.request.headers
    assert response.status_code == status, response.text[:300]
    if shape == OK:
        assert fragment in response.text
    elif shape == PLAIN:  # gin's answer, as real Ollama gives it
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == fragment
    elif shape == NATIVE:
        body = response.json()
        assert list(body) == ["error"] and isinstance(body["error"], str)
        assert fragment in body["error"]
    else:
        error = response.json()["error"]
        assert list(response.json()) == ["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert isinstance(error["message"], str) and fragment in error["message"]
        assert error["type"] == OPENAI_TYPES.get(status, "api_error")
        assert error["param"] is None or isinstance(error["param"], str)
        assert error["code"] is None  # Ollama's openai.NewError never sets it
    assert "Traceback" not in engine.stderr()[before:]


def test_huge_keep_alive_means_forever(http):
    """A numeric keep_alive past Go's Duration range is kept as forever, not a finite deadline that
    no datetime can hold (it made every later /api/ps a 500)."""
    response = http.post("/api/generate", json={"model": "lab", "prompt": "hi", "stream": False, "keep_alive": 1e308})
    assert response.status_code == 200
    ps = http.get("/api/ps")
    assert ps.status_code == 200
    assert any(m["name"] == "lab:latest" for m in ps.json()["models"])


# ---------------------------------------------------------------- the same, through the official SDKs


@pytest.mark.parametrize("kwargs, message", [
    pytest.param({"messages": []}, "[] is too short - 'messages'", id="empty-messages"),
    pytest.param({"messages": HI, "temperature": 3}, "Invalid 'temperature': 3", id="temperature-3"),
    pytest.param({"messages": HI, "n": 0}, "Invalid 'n': 0", id="n-0"),
    pytest.param({"messages": HI, "response_format": {"type": "sound"}}, "'response_format.type'",
                 id="response-format-sound"),
    pytest.param({"messages": [{"role": "wizard", "content": "hi"}]}, "Invalid value: 'wizard'", id="invalid-role"),
])
def test_openai_sdk_bad_request(openai_client, kwargs, message):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client.chat.completions.create(model="lab", **kwargs)
    assert raised.value.status_code == 400
    assert message in raised.value.body["message"] and message in str(raised.value)
    assert raised.value.type == "invalid_request_error"


def test_openai_sdk_bad_embeddings_and_unknown_model(openai_client):
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client.embeddings.create(model="lab-embed", input="x", dimensions=0)
    assert raised.value.status_code == 400 and "dimensions must be between" in raised.value.body["message"]
    with pytest.raises(openai.NotFoundError) as missing:
        openai_client.chat.completions.create(model="nope", messages=HI)
    assert missing.value.status_code == 404 and missing.value.body["message"] == "model 'nope' not found"


@pytest.mark.parametrize("call, message", [
    pytest.param(lambda c: c.chat("lab", messages=HI, options={"temperature": "hot"}),
                 'option "temperature" must be of type float32', id="temperature-hot"),
    pytest.param(lambda c: c.generate("lab", prompt="hi", keep_alive="forever"),
                 'time: invalid duration "forever"', id="keep-alive-forever"),
    pytest.param(lambda c: c.chat("lab-embed", messages=HI), '"lab-embed" does not support chat',
                 id="chat-on-embedding-model"),
    pytest.param(lambda c: c.embed("lab", input="x"), '"lab" does not support embedding',
                 id="embed-on-chat-model"),
    pytest.param(lambda c: c.chat("lab", messages=[{"role": "wizard", "content": "hi"}]), 'invalid role "wizard"',
                 id="invalid-role"),
    pytest.param(lambda c: c.generate("lab", prompt="def f(", suffix="    return 1"), "does not support insert",
                 id="suffix-without-insert"),
    pytest.param(lambda c: c.chat("lab", messages=HI, logprobs=True, top_logprobs=21),
                 "top_logprobs must be between 0 and 20", id="top-logprobs-21"),
    pytest.param(lambda c: c.chat("my model", messages=HI), "invalid model name", id="invalid-model-name"),
])
def test_ollama_sdk_bad_request(ollama_client, call, message):
    with pytest.raises(ollama.ResponseError) as raised:
        call(ollama_client)
    assert raised.value.status_code == 400
    assert raised.value.error == message or message in raised.value.error


def test_ollama_sdk_unknown_model(ollama_client):
    with pytest.raises(ollama.ResponseError) as raised:
        ollama_client.chat("nope", messages=HI)
    assert raised.value.status_code == 404 and raised.value.error == "model 'nope' not found"


def test_no_traceback_in_engine_log(engine, stderr_start):
    """Last in the module: nothing above made the engine log a traceback, even after its answer."""
    assert "Traceback" not in engine.stderr()[stderr_start:]
