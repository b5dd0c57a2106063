# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 6 of 7 · Spec compliance
#
# A pull request lands on a project you help maintain: a small **OpenAI-compatible simulator**,
# a fake engine that CI uses instead of a GPU. The PR description says: *"validates parameter
# ranges, supports `response_format` (json_object and json_schema), base64 embeddings, `n` and
# `best_of`, and vLLM's extras."* Each of those claims is a promise about the wire, and each
# one is easy to get almost right. Your review will not be an opinion: it will be a
# **conformance checker** that probes any engine over HTTP and reports what it found.
#
# You will:
#
# 1. read what the OpenAI spec promises for parameter ranges and error objects, and what each
#    engine actually does;
# 2. see why a naive schema-driven example generator breaks on `enum`, `const`, `anyOf`/`oneOf`,
#    `$ref` and `minItems`, and write one that does not;
# 3. check structured output: JSON mode, JSON Schema, and stop sequences that must not cut JSON;
# 4. decode base64 embeddings as the spec defines them: little-endian float32, explicitly;
# 5. check `n`, `best_of`, and vLLM's extensions (extra sampling parameters, `stop_reason`),
#    which a strict client must tolerate;
# 6. put it all in one report, run it on four engines and the PR's simulator, and plot it.
#
# **How this notebook is graded.** Seven test cells, 15 points. Visible asserts check easy
# cases. Hidden tests run your checkers against the four lab engine profiles, which differ on
# purpose, and against the PR's simulator with bugs switched on, one at a time: a checker must
# find each bug and must not report a violation where there is none. Nothing is graded on what
# a model says, only on what the protocol does.

# %% [markdown]
# ## Setup
#
# Four lab engines, one per profile, each imitating a real engine's `/v1` layer (the profiles
# differ on purpose; you will find out how). The cell also defines what every check produces,
# a `Finding`, and `chat()`, one request to `/chat/completions`, streamed or not, returned as an
# `Exchange` you can inspect. Read both after running it.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import base64
import contextlib
import json
import struct
import sys
from dataclasses import asdict, dataclass, field

import httpx
import jsonschema
import matplotlib.pyplot as plt
import numpy as np
import openai
import pandas as pd

from compatlab.backends import lab_engines, real_engines
from compatlab.lessonkit import serve_app

ENGINES = lab_engines(("ollama", "ollama-legacy", "llamacpp", "vllm"))
V1 = {name: f"{url}/v1" for name, url in ENGINES.items()}  # OpenAI base URLs, as the SDK wants them
MODEL, EMBED_MODEL = "lab:latest", "lab-embed:latest"
HELLO = [{"role": "user", "content": "Say hello."}]
TIMEOUT = httpx.Timeout(10.0, connect=2.0)  # no check may hang
HTTP = httpx.Client(timeout=TIMEOUT)  # one client for the notebook: connections are reused


@dataclass
class Finding:
    """One check's result: what was probed, what the spec expects, what came back, and whether
    that is acceptable."""

    check: str
    expected: str
    observed: str
    ok: bool


def table(findings):
    """Findings as a DataFrame with the columns check, expected, observed, ok."""
    return pd.DataFrame([asdict(f) for f in findings], columns=["check", "expected", "observed", "ok"])


@dataclass
class Exchange:
    """One request and what came back.

    status -- the HTTP status.
    body   -- the parsed JSON body (a non-streamed reply, or any refusal); None if it was not JSON.
    text   -- the raw body ("" for a stream that was accepted).
    chunks -- streamed replies: every parsed `data:` event before `[DONE]`, in order.
    done   -- streamed replies: True if `data: [DONE]` arrived.
    """

    status: int
    body: object = None
    text: str = ""
    chunks: list = field(default_factory=list)
    done: bool = False
    streamed: bool = False

    def contents(self):
        """{choice index: the whole content}, from the message or from the joined deltas."""
        texts = {}
        if self.streamed:
            for chunk in self.chunks:
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    texts[choice.get("index", 0)] = texts.get(choice.get("index", 0), "") + (delta.get("content") or "")
        elif isinstance(self.body, dict):
            for choice in self.body.get("choices") or []:
                texts[choice.get("index", 0)] = (choice.get("message") or {}).get("content") or ""
        return texts

    def finish_reasons(self):
        """{choice index: its finish_reason} (streamed: the last one that was not null)."""
        if self.streamed:
            choices = [choice for chunk in self.chunks for choice in chunk.get("choices") or []]
        else:
            choices = self.body.get("choices") or [] if isinstance(self.body, dict) else []
        reasons = {}
        for choice in choices:
            if choice.get("finish_reason") is not None or choice.get("index", 0) not in reasons:
                reasons[choice.get("index", 0)] = choice.get("finish_reason")
        return reasons


def _parsed(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def post(base_url, path, body):
    """POST a JSON body to base_url + path; an Exchange (non-streamed)."""
    response = HTTP.post(base_url.rstrip("/") + path, json=body)
    return Exchange(response.status_code, _parsed(response.text), response.text)


def chat(base_url, model, messages=HELLO, **params):
    """One /chat/completions request with `params` in the body (stream=True streams it)."""
    body = {"model": model, "messages": messages, **params}
    if not params.get("stream"):
        return post(base_url, "/chat/completions", body)
    with HTTP.stream("POST", base_url.rstrip("/") + "/chat/completions", json=body) as response:
        if response.status_code != 200:  # refused before the stream began: a JSON body
            text = response.read().decode(errors="replace")
            return Exchange(response.status_code, _parsed(text), text, streamed=True)
        exchange = Exchange(200, streamed=True)
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                exchange.done = True
                break
            exchange.chunks.append(_parsed(data) or {"unparsed": data})
    return exchange


def describe(exchange, limit=90):
    """A short observed value for a Finding: the status, and the body or content."""
    if exchange.status != 200:
        return f"{exchange.status} {exchange.text[:limit]}"
    contents = exchange.contents()
    shown = " | ".join(contents[index][:limit] for index in sorted(contents))
    return f"200 {'streamed' if exchange.streamed else ''} {shown}".replace("  ", " ")


print("engines:", ENGINES)

# %% [markdown]
# ## The pull request's simulator
#
# Here is the code under review, condensed. It fronts a lab engine (the `llamacpp` profile,
# which validates nothing) and adds the behaviours the PR claims: parameter validation, JSON
# output, base64 embeddings, OpenAI error objects. Earlier review rounds found bugs; the
# simulator keeps each one behind a *quirk* switch, so you can point your checker at a version
# with one bug and see whether it notices. `simulator()` is the fixed PR;
# `simulator("naive-json-schema")` is the PR with that bug back in. Each call returns a `/v1`
# base URL. The quirks are listed in `QUIRKS`.
#
# `naive_example(schema)` is the PR's first way of faking structured output: an example value
# built from a schema's `type`. We look at it closely below.

# %% nbgrader={"grade": false, "grade_id": "simulator", "locked": true, "schema_version": 3, "solution": false, "task": false}
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

QUIRKS = {
    "500-on-bad-params": "refuses out-of-range parameters with HTTP 500 instead of 400",
    "detail-on-bad-params": "refuses them with 400 and FastAPI's {'detail': ...}, not an OpenAI error",
    "native-error-on-bad-params": "refuses them with 400 and Ollama's native {'error': '...'}",
    "open-ranges": "treats every range as open: refuses temperature 0 and 2, top_p 0 and 1, penalties -2 and 2",
    "top-p-zero-refused": "refuses top_p = 0, as vLLM does (the spec's range is [0, 1])",
    "no-n-check": "accepts n < 1",
    "no-best-of-check": "accepts best_of < n",
    "no-penalty-check": "does not check frequency_penalty and presence_penalty",
    "validate-non-streamed-only": "validates parameters only when stream is false",
    "naive-json-schema": "answers json_schema requests with naive_example(schema)",
    "schema-ignored-when-streamed": "drops response_format json_schema when stream is true",
    "stop-cuts-json": "applies stop sequences to JSON output",
    "stop-cuts-json-when-streamed": "applies stop sequences to JSON output when stream is true",
    "embeddings-big-endian": "packs base64 embeddings as big-endian float32",
    "embeddings-float64": "packs base64 embeddings as little-endian float64",
    "n-ignored": "returns one choice whatever n asks for",
    "extras-rejected": "refuses unknown body fields with FastAPI's 422",
    "stop-reason": "adds vLLM's stop_reason to every choice (an extension, not a bug)",
    "plain-404": "answers an unknown model with a plain-text 404",
}
RANGES = {"temperature": (0, 2), "top_p": (0, 1), "frequency_penalty": (-2, 2), "presence_penalty": (-2, 2)}
KNOWN_FIELDS = {"model", "messages", "stream", "stream_options", "temperature", "top_p", "frequency_penalty",
                "presence_penalty", "n", "best_of", "max_tokens", "max_completion_tokens", "stop", "seed",
                "response_format", "tools", "tool_choice", "user", "logprobs", "top_logprobs"}


def naive_example(schema):
    """The PR's first draft: an example value for a JSON Schema, from its `type` alone."""
    kind = schema.get("type")
    if kind == "object":
        return {name: naive_example(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    return {"string": "string", "integer": 0, "number": 0.0, "boolean": False}.get(kind)  # None otherwise


def _openai_error(status, message, param=None):
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status)


def _out_of_range(body, quirks):
    """(message, param) for the first parameter the simulator refuses, or None."""
    if body.get("stream") and "validate-non-streamed-only" in quirks:
        return None
    for name, (low, high) in RANGES.items():
        value = body.get(name)
        if value is None or ("penalty" in name and "no-penalty-check" in quirks):
            continue
        open_low = (name == "top_p" and "top-p-zero-refused" in quirks) or "open-ranges" in quirks
        open_high = "open-ranges" in quirks
        if value < low or value > high or (open_low and value <= low) or (open_high and value >= high):
            return f"Invalid '{name}': {value}.", name
    n = 1 if body.get("n") is None else body["n"]
    if n < 1 and "no-n-check" not in quirks:
        return f"Invalid 'n': {n}. It must be at least 1.", "n"
    if body.get("best_of") is not None and body["best_of"] < n and "no-best-of-check" not in quirks:
        return f"Invalid 'best_of': {body['best_of']}. It must not be less than n ({n}).", "best_of"
    return None


def _cut(text, stop):
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    hits = [text.find(s) for s in stops if s and s in text]
    return text[:min(hits)] if hits else text


def _as_sse(reply):
    """A whole reply re-sent as an SSE stream: role, content in 8-character pieces, finish."""
    head = {key: reply[key] for key in ("id", "created", "model")}
    for choice in reply["choices"]:
        index, text = choice["index"], choice["message"].get("content") or ""
        extra = {key: value for key, value in choice.items() if key not in ("index", "message", "finish_reason")}
        deltas = [{"role": "assistant", "content": ""}] + [{"content": text[i:i + 8]} for i in range(0, len(text), 8)]
        for delta in deltas:
            event = {**head, "object": "chat.completion.chunk",
                     "choices": [{"index": index, "delta": delta, "finish_reason": None}]}
            yield f"data: {json.dumps(event)}\n\n"
        final = {"index": index, "delta": {}, "finish_reason": choice["finish_reason"], **extra}
        yield f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', 'choices': [final]})}\n\n"
    yield "data: [DONE]\n\n"


def simulator_app(upstream):
    """The PR's simulator as a FastAPI app; /quirks/<a,b,...>/v1/... switches quirks on."""
    app = FastAPI()
    client = httpx.AsyncClient(timeout=TIMEOUT)  # used only on the server's own event loop

    async def forward(path, body):
        # the PR's server knows its models; the llama-server behind it would serve any name
        known = {model["id"] for model in (await client.get(f"{upstream}/v1/models")).json()["data"]}
        name = str(body.get("model"))
        if name not in known and f"{name}:latest" not in known:
            return httpx.Response(404, json={"error": {"message": f"model '{name}' not found"}})
        return await client.post(f"{upstream}/v1{path}", json=body)

    def upstream_error(response, quirks):
        if response.status_code == 404 and "plain-404" in quirks:
            return PlainTextResponse("model not found", 404)
        message = (response.json().get("error") or {}).get("message", response.text)
        return _openai_error(response.status_code, message)

    @app.post("/quirks/{names}/v1/chat/completions")
    async def chat_completions(names: str, request: Request):
        quirks = set(filter(None, names.split(",")))
        body = await request.json()
        unknown = sorted(set(body) - KNOWN_FIELDS)
        if unknown and "extras-rejected" in quirks:
            return JSONResponse({"detail": [{"type": "extra_forbidden", "loc": ["body", name],
                                             "msg": "Extra inputs are not permitted"} for name in unknown]}, 422)
        refused = _out_of_range(body, quirks)
        if refused:
            if "detail-on-bad-params" in quirks:
                return JSONResponse({"detail": refused[0]}, 400)
            if "native-error-on-bad-params" in quirks:
                return JSONResponse({"error": refused[0]}, 400)
            return _openai_error(500 if "500-on-bad-params" in quirks else 400, *refused)
        streamed = bool(body.get("stream"))
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
        sent = {key: value for key, value in body.items() if key not in ("stream", "stream_options")}
        if "n-ignored" in quirks:
            sent.pop("n", None)
        if schema is not None and ("naive-json-schema" in quirks or streamed and "schema-ignored-when-streamed" in quirks):
            sent.pop("response_format")
        response = await forward("/chat/completions", sent)
        if response.status_code != 200:
            return upstream_error(response, quirks)
        reply = response.json()
        reply.pop("timings", None)
        reply["system_fingerprint"] = "fp_simulator"
        for choice in reply["choices"]:
            message = choice["message"]
            if schema is not None and "naive-json-schema" in quirks:
                message["content"] = json.dumps(naive_example(schema))
            cuts = "stop-cuts-json" in quirks or streamed and "stop-cuts-json-when-streamed" in quirks
            if cuts and fmt.get("type") in ("json_object", "json_schema"):
                message["content"] = _cut(message["content"], body.get("stop"))
            if "stop-reason" in quirks:
                choice["stop_reason"] = None
        if streamed:
            return StreamingResponse(_as_sse(reply), media_type="text/event-stream")
        return JSONResponse(reply)

    @app.post("/quirks/{names}/v1/embeddings")
    async def embeddings(names: str, request: Request):
        quirks = set(filter(None, names.split(",")))
        body = await request.json()
        response = await forward("/embeddings", {**body, "encoding_format": "float"})
        if response.status_code != 200:
            return upstream_error(response, quirks)
        reply = response.json()
        if body.get("encoding_format") == "base64":
            layout = ">f" if "embeddings-big-endian" in quirks else "<d" if "embeddings-float64" in quirks else "<f"
            for item in reply["data"]:
                vector = item["embedding"]
                item["embedding"] = base64.b64encode(struct.pack(f"{layout[0]}{len(vector)}{layout[1]}", *vector)).decode()
        return reply

    return app


_serving = contextlib.ExitStack()  # the simulator runs in this kernel until it exits
SIMULATOR = _serving.enter_context(serve_app(simulator_app(ENGINES["llamacpp"])))


def simulator(*quirks):
    """The /v1 base URL of the PR's simulator with these quirks switched on (none: the fixed PR)."""
    unknown = [quirk for quirk in quirks if quirk not in QUIRKS]
    if unknown:
        raise ValueError(f"no quirk {unknown}; choose from {sorted(QUIRKS)}")
    return f"{SIMULATOR.url}/quirks/{','.join(quirks) or 'none'}/v1"


print("the PR's simulator:", simulator())

# %% [markdown]
# ## Parameter ranges and error objects
#
# The OpenAI API reference gives each sampling parameter a range, and a request outside it is
# the *client's* mistake, so the answer is **HTTP 400** with an error object:
#
# | parameter | accepted | refused (400) |
# |---|---|---|
# | `temperature` | 0 to 2, both included | below 0, above 2 |
# | `top_p` | 0 to 1, both included: [0, 1] | below 0, above 1 |
# | `frequency_penalty`, `presence_penalty` | −2 to 2, both included | below −2, above 2 |
# | `n` | 1 to 128 | 0 and below (this lesson does not probe the top) |
# | `best_of` (legacy `/completions`; some engines take it on chat) | greater than `n` | below `n` |
#
# These are the `minimum` and `maximum` of OpenAI's own schema (`openapi.yaml` in
# `openai/openai-openapi`). Two rows deserve a word. `top_p` is closed at 0 in the spec;
# refusing `top_p: 0` is **vLLM's** rule (its `sampling_params.py` says "top_p must be in
# (0, 1]"), stricter than the spec, and you will see vLLM fail that probe. For `best_of` the
# spec's text says it "must be greater than `n`", yet its own default is `best_of: 1` with
# `n: 1`, and engines (vLLM, the lab engine) accept `best_of == n`; so the checker probes only
# what every reading agrees on: `best_of` below `n` is refused, above `n` is accepted.
#
# The edges are part of the contract: `temperature: 2`, `top_p: 0` and `1`, and a penalty of
# `-2` are valid, and an engine that refuses them breaks clients that use them. A 500 is *not* a
# refusal: it says the server failed, and clients (the `openai` SDK among them) **retry** 5xx
# answers, sending the same bad request again.
#
# The error object has four fields, always present, `null` when they do not apply:
#
# ```json
# {"error": {"message": "Invalid 'temperature': 2.5 ...", "type": "invalid_request_error",
#            "param": "temperature", "code": null}}
# ```
#
# The four lab profiles answer the same bad request like this:

# %%
for name, base_url in V1.items():
    exchange = chat(base_url, MODEL, temperature=2.5)
    print(f"{name:14} {exchange.status} {exchange.text[:150]}")

# %% [markdown]
# `ollama` and `vllm` refuse it (the `ollama` profile validates on purpose; real Ollama passes
# parameters through unchecked, which `ollama-legacy` shows). `llamacpp` accepts it, as
# llama-server does. Notice the shapes too: Ollama's `param` is `null` even though it knows
# which parameter it refused (its `openai.NewError` never fills it in, `openai/openai.go` in
# v0.32.15), vLLM's `type` is a class name and its `code` the HTTP status as a number. OpenAI's own schema types `code` as a string or null, but clients
# read `message` (and at most compare `code`), so a number does no harm: this lesson accepts a
# string, an integer or null. A *missing* field is another matter. A request llama-server
# refuses, `messages` that is not a list:

# %%
print(chat(V1["llamacpp"], MODEL, messages="not a list").text)

# %% [markdown]
# No `param` key at all. A client that reads `error["param"]` gets a `KeyError`. The `openai`
# SDK turns any 4xx into an exception and keeps the body, so what a caller sees is what the
# engine sent. Here vLLM refuses `top_p: 0`, which the spec allows (vLLM's own rule, above):

# %%
client = openai.OpenAI(base_url=V1["vllm"], api_key="lab", max_retries=0, timeout=10)
try:
    client.chat.completions.create(model=MODEL, messages=HELLO, top_p=0)
except openai.BadRequestError as exc:
    print(type(exc).__name__, exc.status_code, exc.body)

# %% [markdown]
# ### Exercise 1 · Is this an OpenAI error? (2 points)
#
# Write `is_openai_error(status, body)`: True when `status` is 400 or more and `body` (parsed
# JSON, or None) is an object whose `"error"` is an object with all four fields:
#
# - `message`: a string; `type`: a string;
# - `param`: a string or null; `code`: a string, an integer or null (not a boolean: in Python
#   `True` is an `int`, but JSON's `true` is no error code).
#
# Anything else is False: no `error` key, an `error` that is a string (Ollama's *native* API
# does that), a missing field, a field of the wrong type, or an error object on a 2xx answer.

# %% [markdown]
# #### Hints for exercise 1
#
# <details><summary>Hint 1 · Guard the shape first</summary>
#
# Return False early unless `status >= 400`, `body` is a dict and `body.get("error")` is a
# dict. Every later line can then index freely.
# </details>
#
# <details><summary>Hint 2 · Present, then typed</summary>
#
# `all(key in error for key in ("message", "type", "param", "code"))` catches a missing
# field (`param` is missing in llama-server's errors); a present field set to `null` is fine.
# </details>
#
# <details><summary>Hint 3 · The integer trap</summary>
#
# `isinstance(True, int)` is True in Python. Accept `code` when it is None, a `str`, or an `int`
# that is not a `bool`.
# </details>

# %% nbgrader={"grade": false, "grade_id": "is_openai_error", "locked": false, "schema_version": 3, "solution": true, "task": false}
def is_openai_error(status, body):
    ### BEGIN SOLUTION
    if status < 400 or not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    error = body["error"]
    if not all(key in error for key in ("message", "type", "param", "code")):
        return False
    code_ok = error["code"] is None or isinstance(error["code"], str) or (
        isinstance(error["code"], int) and not isinstance(error["code"], bool))
    return (isinstance(error["message"], str) and isinstance(error["type"], str)
            and (error["param"] is None or isinstance(error["param"], str)) and code_ok)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_is_openai_error", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
good = {"error": {"message": "Invalid 'top_p': 1.5.", "type": "invalid_request_error", "param": "top_p", "code": None}}
try:
    got = is_openai_error(400, good)
except NotImplementedError:
    raise AssertionError("Exercise 1 is not answered yet: is_openai_error still raises NotImplementedError") from None
assert got is True, f"a 400 with all four error fields is an OpenAI error, so the answer is True, but is_openai_error returned {got!r}"
got = is_openai_error(400, {"detail": "top_p must be at most 1"})  # a fault case
assert got is False, f"FastAPI's {{'detail': ...}} body has no 'error' object, so the answer is False, but is_openai_error returned {got!r}"
got = is_openai_error(400, None)
assert got is False, f"a body that is not JSON (None) is no OpenAI error, so the answer is False, but is_openai_error returned {got!r}"
### BEGIN HIDDEN TESTS
accepted = [
    (404, {"error": {"message": "m", "type": "not_found_error", "param": None, "code": None}}, "all four fields, nulls allowed"),
    (400, {"error": {"message": "m", "type": "BadRequestError", "param": "n", "code": 400}}, "vLLM's integer code"),
    (404, {"error": {"message": "m", "type": "invalid_request_error", "param": None, "code": "model_not_found"}},
     "a string code"),
    (500, {"error": {"message": "m", "type": "server_error", "param": None, "code": None}}, "a server error"),
]
for status, body, what in accepted:
    got = is_openai_error(status, body)
    assert got, f"{status} with {body} is an OpenAI error ({what}), but is_openai_error returned {got!r}"
refused = [
    (200, good, "an error object on a 200 is not an error answer"),
    (201, good, "an error object on a 201 is not an error answer"),
    (400, {"error": "temperature out of range"}, "Ollama's native shape: error is a string"),
    (404, {"error": {"code": 404, "message": "m", "type": "not_found_error"}}, "param is missing"),
    (400, {"error": {"message": "m", "type": "t", "param": None}}, "code is missing"),
    (400, {"error": {"type": "t", "param": None, "code": None}}, "message is missing"),
    (400, {"error": {"message": None, "type": "t", "param": None, "code": None}}, "message is null"),
    (400, {"error": {"message": "m", "type": 400, "param": None, "code": None}}, "type is a number"),
    (400, {"error": {"message": "m", "type": "t", "param": 3, "code": None}}, "param is a number"),
    (400, {"error": {"message": "m", "type": "t", "param": None, "code": 1.5}}, "code is a float"),
    (400, {"error": {"message": "m", "type": "t", "param": None, "code": True}}, "code is a boolean"),
    (400, [good], "the body is a list"),
    (400, "Bad Request", "the body is a string"),
    (400, {"error": None}, "error is null"),
]
for status, body, what in refused:
    got = is_openai_error(status, body)
    assert not got, f"{status} with {body!r} is not an OpenAI error ({what}), but is_openai_error returned {got!r}"
for name in ("ollama", "vllm"):
    refused_live = chat(V1[name], MODEL, top_p=1.5)
    got = is_openai_error(refused_live.status, refused_live.body)
    assert got, f"the {name} engine refuses top_p=1.5 with an OpenAI error ({refused_live.status} {refused_live.text[:120]}), but is_openai_error returned {got!r}"
refused_live = chat(V1["llamacpp"], MODEL, messages="not a list")
assert refused_live.status == 400, f"llama-server refuses messages that are not a list with 400, but the engine answered {refused_live.status}"
got = is_openai_error(refused_live.status, refused_live.body)
assert not got, f"llama-server's error object has no param ({refused_live.text[:120]}), so it is not an OpenAI error, but is_openai_error returned {got!r}"
### END HIDDEN TESTS
print("✓ is_openai_error: every check in this cell passed")

# %% [markdown]
# ### Exercise 2 · A parameter-range checker (3 points)
#
# Write `check_params(base_url, model)`, returning a list of `Finding`s. Probe every range in
# the table above **from both sides**: values just outside (expected: 400 with an OpenAI error)
# and the edge values inside (expected: 200), for each of the four parameters, `n`, and
# `best_of` against `n`. Send every probe twice, non-streamed and with `stream=True`: the
# two are separate code paths in every engine, and validating one does not validate the other.
# A probe passes (`ok=True`) only when the answer is what the spec says: a 500, or a 400 that
# is not an OpenAI error, is not a pass. Name each check so a reader knows what was sent
# (`"top_p=0 (streamed)"`), no two findings with the same name, and use `describe(exchange)`
# for `observed`. For `best_of`, probe `n=2, best_of=1` (refused) and `n=1, best_of=2`
# (accepted), the two cases every reading of the spec agrees on.
#
# `max_tokens=5` keeps the replies short. Try your checker on `V1["ollama-legacy"]` and on a
# few of the simulator's quirks.

# %% [markdown]
# #### Hints for exercise 2
#
# <details><summary>Hint 1 · Two lists of probes</summary>
#
# Write the probes as data: a list of parameter dicts that must be refused
# (`{"temperature": -0.1}`, `{"top_p": 1.1}`, `{"n": 0}`, …) and a list that must be accepted (the
# edges: `{"temperature": 0}`, `{"top_p": 0}`, `{"top_p": 1}`, …). Loop over both, and over
# `stream in (False, True)`.
# </details>
#
# <details><summary>Hint 2 · What counts as refused</summary>
#
# `exchange.status == 400 and is_openai_error(exchange.status, exchange.body)`. A 500, a 422, or
# a 400 with FastAPI's `detail` is a failed probe: use your Exercise 1.
# </details>
#
# <details><summary>Hint 3 · Names</summary>
#
# Build the name from the parameters: `", ".join(f"{k}={v}" for k, v in params.items())`, plus
# `" (streamed)"` on the streamed path. Every probe then has a name of its own.
# </details>

# %% nbgrader={"grade": false, "grade_id": "check_params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def check_params(base_url, model):
    ### BEGIN SOLUTION
    refused = [{"temperature": -0.1}, {"temperature": 2.1}, {"top_p": -0.1}, {"top_p": 1.1},
               {"frequency_penalty": -2.1}, {"frequency_penalty": 2.1},
               {"presence_penalty": -2.1}, {"presence_penalty": 2.1},
               {"n": 0}, {"n": 2, "best_of": 1}]
    accepted = [{"temperature": 0}, {"temperature": 2}, {"top_p": 0}, {"top_p": 1},
                {"frequency_penalty": -2}, {"frequency_penalty": 2},
                {"presence_penalty": -2}, {"presence_penalty": 2},
                {"n": 1}, {"n": 1, "best_of": 2}]
    findings = []
    for params, accept in [*((p, False) for p in refused), *((p, True) for p in accepted)]:
        for stream in (False, True):
            exchange = chat(base_url, model, max_tokens=5, stream=stream, **params)
            label = ", ".join(f"{key}={value}" for key, value in params.items()) + (" (streamed)" if stream else "")
            if accept:
                findings.append(Finding(label, "200", describe(exchange), exchange.status == 200))
            else:
                ok = exchange.status == 400 and is_openai_error(exchange.status, exchange.body)
                findings.append(Finding(label, "400 with an OpenAI error", describe(exchange), ok))
    return findings
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_check_params", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
try:
    findings = check_params(V1["ollama"], MODEL)
except NotImplementedError:
    raise AssertionError("Exercise 2 is not answered yet: check_params still raises NotImplementedError") from None
assert findings and all(isinstance(f, Finding) for f in findings), \
    f"check_params should return a non-empty list of Findings, but it returned {findings!r:.200}"
failed = [f.check for f in findings if not f.ok]
assert not failed, f"the ollama profile validates every range as the spec says, so every probe should pass, but these failed: {failed}"
legacy = check_params(V1["ollama-legacy"], MODEL)  # a fault case
assert not all(f.ok for f in legacy), \
    "ollama-legacy accepts every value, even out of range, so some probes must fail, but check_params passed them all"
table(legacy)
### BEGIN HIDDEN TESTS
assert any(f.ok for f in legacy), \
    "the edge values are valid and ollama-legacy accepts them, so some probes must pass, but check_params failed them all"
names = [f.check for f in findings]
assert len(set(names)) == len(names), \
    f"each probe needs a name of its own, but check_params repeats some: {sorted({n for n in names if names.count(n) > 1})}"
failed = [f.check for f in check_params(V1["vllm"], MODEL) if not f.ok]
assert failed and all(name.startswith("top_p=0") for name in failed), \
    f"vLLM refuses top_p=0, which the spec allows, and conforms otherwise, so exactly the top_p=0 probes should fail, but these failed: {failed}"
assert not all(f.ok for f in check_params(V1["llamacpp"], MODEL)), \
    "llama-server accepts out-of-range values, so some probes must fail, but check_params passed them all"
for quirks in ((), ("stop-reason", "n-ignored")):
    failed = [f.check for f in check_params(simulator(*quirks), MODEL) if not f.ok]
    assert not failed, f"the fixed PR (quirks {list(quirks)}) is conformant on ranges, but these probes failed: {failed}"
for quirk in ("500-on-bad-params", "detail-on-bad-params", "native-error-on-bad-params", "open-ranges",
              "top-p-zero-refused", "no-n-check", "no-best-of-check", "no-penalty-check",
              "validate-non-streamed-only"):
    assert not all(f.ok for f in check_params(simulator(quirk), MODEL)), \
        f"the simulator with quirk {quirk} {QUIRKS[quirk]}, so some probe must fail, but check_params passed them all"
### END HIDDEN TESTS
print("✓ check_params: every check in this cell passed")

# %% [markdown]
# ## Structured output, and a naive generator
#
# `response_format` asks for JSON. `{"type": "json_object"}` promises *some* JSON object;
# `{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}` promises a value
# that validates against the schema. Engines enforce it by constraining decoding (a grammar
# built from the schema). A simulator has no model to constrain, so it *fakes* a value from
# the schema, and that is where the PR's first draft went wrong. `naive_example` (in the
# simulator cell) looks only at `type`:
#
# ```python
# if kind == "object": {name: naive_example(sub) for each property}
# if kind == "array":  []
# else: "string", 0, 0.0, False, or None
# ```
#
# Schemas that real applications send are not that simple. These are the ones your checker
# will send (the tests use this cell too, so it is read-only):

# %% nbgrader={"grade": false, "grade_id": "tricky_schemas", "locked": true, "schema_version": 3, "solution": false, "task": false}
TRICKY_SCHEMAS = {
    "enum": {"type": "object", "properties": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
             "required": ["unit"]},
    "const": {"type": "object", "properties": {"version": {"const": 2}, "kind": {"type": "string", "const": "event"}},
              "required": ["version", "kind"]},
    "anyOf": {"type": "object", "properties": {"id": {"anyOf": [{"type": "integer", "minimum": 1},
                                                                {"type": "string", "minLength": 3}]}},
              "required": ["id"]},
    "oneOf": {"type": "object", "required": ["shape"], "properties": {"shape": {"oneOf": [
        {"type": "object", "properties": {"kind": {"const": "circle"}, "radius": {"type": "number", "minimum": 1}},
         "required": ["kind", "radius"]},
        {"type": "object", "properties": {"kind": {"const": "square"}, "side": {"type": "number", "minimum": 1}},
         "required": ["kind", "side"]}]}}},
    "$ref": {"type": "object", "$defs": {"city": {"type": "object", "properties": {"name": {"type": "string"}},
                                                  "required": ["name"]}},
             "properties": {"home": {"$ref": "#/$defs/city"}, "work": {"$ref": "#/$defs/city"}},
             "required": ["home"]},
    "minItems": {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 2}},
                 "required": ["tags"]},
}


def schema_errors(value, schema):
    """Every way `value` breaks `schema`, as jsonschema reports them ([] when it is valid)."""
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(value)]


for name, schema in TRICKY_SCHEMAS.items():
    value = naive_example(schema)
    print(f"{name:9} {json.dumps(value):45} {schema_errors(value, schema) or 'valid'}")

# %% [markdown]
# Every one fails. `enum` and `const` constrain the value, not just its type; `anyOf` and
# `oneOf` carry no `type` of their own, so the naive code returns `None`; a `$ref` points into
# `$defs` and must be followed; `minItems: 2` makes `[]` invalid. The lab engines generate
# valid values for all of them (their generator is `compatlab.engine.schema_values`), and so
# must the simulator.
#
# ### Exercise 3 · `sample_value(schema)` (3 points)
#
# Write `sample_value(schema)`: a JSON value valid against `schema`. Support:
#
# - `$ref` to a local pointer (`"#/$defs/city"`, `"#/definitions/city"`, resolved from the
#   root schema; references may lead to further references);
# - `const` and `enum` (any value listed will do);
# - `anyOf` and `oneOf` (the branches of the schemas you will get never overlap: pick one);
# - `type` (a string, or a list of types: pick one), with `properties` and `required` for
#   objects (every required property present), `items` and `minItems` for arrays, `minimum`
#   and `maximum` for numbers and integers, `minLength` for strings;
# - a schema with none of these (`{}`) accepts anything.

# %% [markdown]
# #### Hints for exercise 3
#
# <details><summary>Hint 1 · Order matters</summary>
#
# Handle `$ref` first (it replaces the whole schema), then `const` and `enum` (they fix the value),
# then `anyOf`/`oneOf`, and only then `type`.
# </details>
#
# <details><summary>Hint 2 · Following a `$ref`</summary>
#
# Keep the root schema in the `root` argument and pass it down in every recursive call. Resolve
# `"#/$defs/city"` by walking `root` with the parts after `#/`, then call `sample_value` on the
# target: a reference may lead to another.
# </details>
#
# <details><summary>Hint 3 · Arrays and objects</summary>
#
# An object gets every property in `properties` plus every name in `required` (a name with no
# schema gets `{}`, which accepts anything). An array gets `minItems` items, each a
# `sample_value(items)`.
# </details>

# %% nbgrader={"grade": false, "grade_id": "sample_value", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sample_value(schema, root=None):
    ### BEGIN SOLUTION
    root = schema if root is None else root
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#").strip("/").split("/"):
            if part:
                target = target[part.replace("~1", "/").replace("~0", "~")]
        return sample_value(target, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return sample_value(schema[key][0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object" or (kind is None and ("properties" in schema or "required" in schema)):
        properties = schema.get("properties", {})
        names = [*properties, *(name for name in schema.get("required", []) if name not in properties)]
        return {name: sample_value(properties.get(name, {}), root) for name in names}
    if kind == "array" or (kind is None and "items" in schema):
        return [sample_value(schema.get("items", {}), root) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 0))
    if kind in ("integer", "number"):
        value = schema.get("minimum", schema.get("maximum", 0))
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    return None
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sample_value", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
try:
    value = sample_value({"type": "string", "enum": ["a", "b"]})
except NotImplementedError:
    raise AssertionError("Exercise 3 is not answered yet: sample_value still raises NotImplementedError") from None
errors = schema_errors(value, {"type": "string", "enum": ["a", "b"]})
assert errors == [], f"a value for an enum must be one of its members, but sample_value returned {value!r}: {errors}"
value = sample_value({"const": 42})
assert value == 42, f"a const schema allows only its value, 42, but sample_value returned {value!r}"
value = sample_value(TRICKY_SCHEMAS["minItems"])  # a fault case for the naive generator
errors = schema_errors(value, TRICKY_SCHEMAS["minItems"])
assert errors == [], f"tags needs at least 2 items (minItems), but sample_value returned {value!r}: {errors}"
### BEGIN HIDDEN TESTS
for name, schema in TRICKY_SCHEMAS.items():
    value = sample_value(schema)
    errors = schema_errors(value, schema)
    assert errors == [], f"sample_value for TRICKY_SCHEMAS[{name!r}] returned {value!r}, which the schema rejects: {errors}"
HIDDEN_SCHEMAS = [
    {"type": "integer", "minimum": 5, "maximum": 9},
    {"type": "number", "minimum": -3.5},
    {"type": "string", "minLength": 4},
    {"type": ["null", "string"]},
    {"type": "boolean"},
    {},
    {"enum": [3, "x", None]},
    {"const": {"a": [1, 2]}},
    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]},
    {"type": "object", "additionalProperties": False, "properties": {"mode": {"enum": ["fast", "slow"]}},
     "required": ["mode"]},
    {"type": "array", "items": {"type": "integer", "minimum": 10}, "minItems": 3},
    {"type": "array", "items": {"$ref": "#/$defs/point"}, "minItems": 2,
     "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                         "required": ["x", "y"]}}},
    {"$ref": "#/definitions/node", "definitions": {"node": {"type": "object", "properties": {
        "label": {"$ref": "#/definitions/label"}}, "required": ["label"]}, "label": {"type": "string", "minLength": 2}}},
    {"type": "object", "properties": {"payment": {"oneOf": [
        {"type": "object", "properties": {"card": {"type": "string", "minLength": 12}}, "required": ["card"],
         "additionalProperties": False},
        {"type": "object", "properties": {"iban": {"type": "string"}}, "required": ["iban"],
         "additionalProperties": False}]}}, "required": ["payment"]},
    {"anyOf": [{"type": "array", "items": {"enum": ["x"]}, "minItems": 1}, {"type": "null"}]},
    {"type": "object", "$defs": {"tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]},
                                          "minItems": 2}},
     "properties": {"meta": {"type": "object", "properties": {"tags": {"$ref": "#/$defs/tags"}},
                             "required": ["tags"]}}, "required": ["meta"]},
    {"type": "object", "properties": {"level": {"type": "integer", "enum": [3, 5]}, "ok": {"const": True}},
     "required": ["level", "ok"]},
]
for schema in HIDDEN_SCHEMAS:
    value = sample_value(schema)
    errors = schema_errors(value, schema)
    assert errors == [], f"for the schema {json.dumps(schema)} sample_value returned {value!r}, which it rejects: {errors}"
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"sample_value must return a JSON value, but for {json.dumps(schema)} it returned {value!r} ({exc})") from None
### END HIDDEN TESTS
print("✓ sample_value: every check in this cell passed")

# %% [markdown]
# ## Stop sequences and JSON
#
# `stop` ends generation at a string, which is right for prose and wrong for structured output:
# a stop of `","` or `"}"` would end a JSON object in the middle, and the client would get
# `{"reply": "Say hello."` — not JSON at all, though it asked for JSON. The PR promises what
# the lab engines do: while the output is constrained to JSON, stop strings are ignored. (Real
# engines differ here; the checker you are about to write tells you what yours does.) The same
# request, prose and JSON:

# %%
prose = chat(V1["vllm"], MODEL, stop=["."])
shaped = chat(V1["vllm"], MODEL, stop=[",", "}"], response_format={"type": "json_object"})
print("prose:", prose.contents()[0], "| finish_reason:", prose.body["choices"][0]["finish_reason"],
      "| stop_reason:", prose.body["choices"][0]["stop_reason"])
print("json: ", shaped.contents()[0], "->", json.loads(shaped.contents()[0]))
print("the PR with stop-cuts-json:", chat(simulator("stop-cuts-json"), MODEL, stop=[",", "}"],
                                          response_format={"type": "json_object"}).contents()[0])

# %% [markdown]
# ### Exercise 4 · A structured-output checker (3 points)
#
# Write `check_structured(base_url, model)`, returning `Finding`s. Check, non-streamed **and**
# streamed (join the deltas: `exchange.contents()` does it):
#
# - `response_format` `json_object`: the content parses as a JSON **object**;
# - `json_schema` with each of `TRICKY_SCHEMAS`: the content parses and `schema_errors` finds
#   nothing;
# - `json_object` with `stop=[",", "}"]`: the content still parses as a JSON object.
#
# A request that is refused, or content that is not JSON, is a failed check, not an exception.

# %% [markdown]
# #### Hints for exercise 4
#
# <details><summary>Hint 1 · The probes as data</summary>
#
# Make a list of `(name, response_format, schema or None, extra params)`: `json_object`, the same
# with `stop=[",", "}"]`, and one `json_schema` per entry of `TRICKY_SCHEMAS`. Loop over it and
# over `stream in (False, True)`.
# </details>
#
# <details><summary>Hint 2 · Judging one exchange</summary>
#
# Only a 200 can pass. `json.loads(exchange.contents().get(0, ""))` inside `try`/`except
# ValueError`; then `schema_errors(value, schema) == []`, or `isinstance(value, dict)` for
# `json_object`.
# </details>
#
# <details><summary>Hint 3 · Why both paths</summary>
#
# An engine (or the PR) may drop `response_format`, or cut JSON at a stop string, only when
# streaming. A checker that never streams cannot see it.
# </details>

# %% nbgrader={"grade": false, "grade_id": "check_structured", "locked": false, "schema_version": 3, "solution": true, "task": false}
def check_structured(base_url, model):
    ### BEGIN SOLUTION
    json_object = {"type": "json_object"}
    probes = [("json_object", json_object, None, {}), ("json_object, stop=[',', '}']", json_object, None,
                                                       {"stop": [",", "}"]})]
    for name, schema in TRICKY_SCHEMAS.items():
        response_format = {"type": "json_schema", "json_schema": {"name": name.strip("$"), "schema": schema}}
        probes.append((f"json_schema {name}", response_format, schema, {}))
    findings = []
    for label, response_format, schema, extra in probes:
        for stream in (False, True):
            exchange = chat(base_url, model, stream=stream, response_format=response_format, **extra)
            expected = "valid against the schema" if schema else "a JSON object"
            ok = False
            if exchange.status == 200:
                try:
                    value = json.loads(exchange.contents().get(0, ""))
                except ValueError:
                    value = ok = False
                else:
                    ok = schema_errors(value, schema) == [] if schema else isinstance(value, dict)
            findings.append(Finding(label + (" (streamed)" if stream else ""), expected, describe(exchange), ok))
    return findings
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_check_structured", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
try:
    findings = check_structured(V1["ollama"], MODEL)
except NotImplementedError:
    raise AssertionError("Exercise 4 is not answered yet: check_structured still raises NotImplementedError") from None
failed = [f.check for f in findings if not f.ok]
assert findings and not failed, \
    f"the ollama profile honours json_object and json_schema on both paths, so every check should pass, but these failed: {failed or 'no findings at all'}"
legacy = check_structured(V1["ollama-legacy"], MODEL)  # a fault case
assert not all(f.ok for f in legacy), \
    "ollama-legacy ignores json_schema and answers in prose, so some checks must fail, but check_structured passed them all"
table(legacy)
### BEGIN HIDDEN TESTS
assert any(f.ok for f in legacy), "ollama-legacy honours json_object, so some checks must pass, but check_structured failed them all"
for name in ("llamacpp", "vllm"):
    failed = [f.check for f in check_structured(V1[name], MODEL) if not f.ok]
    assert not failed, f"the {name} engine honours every schema on both paths, but these checks failed: {failed}"
for quirks in ((), ("stop-reason", "open-ranges")):
    failed = [f.check for f in check_structured(simulator(*quirks), MODEL) if not f.ok]
    assert not failed, f"the fixed PR (quirks {list(quirks)}) gives valid JSON on both paths, but these checks failed: {failed}"
for quirk in ("naive-json-schema", "schema-ignored-when-streamed", "stop-cuts-json", "stop-cuts-json-when-streamed"):
    assert not all(f.ok for f in check_structured(simulator(quirk), MODEL)), \
        f"the simulator with quirk {quirk} {QUIRKS[quirk]}, so some check must fail, but check_structured passed them all"
### END HIDDEN TESTS
print("✓ check_structured: every check in this cell passed")

# %% [markdown]
# ## Embeddings as base64
#
# `/v1/embeddings` returns each vector as a list of numbers, or, with
# `"encoding_format": "base64"`, as the vector's bytes in base64: a third of the size on the
# wire, and no decimal printing and parsing. The bytes are **little-endian float32**, four per
# number; the Python SDK (3.x) asks for base64 by default when you do not choose, and decodes
# it. So the encoder must say which byte order it means:
#
# ```python
# struct.pack(f"<{len(vector)}f", *vector)       # "<": little-endian, "f": float32
# np.asarray(vector, dtype="<f4").tobytes()       # the same bytes
# ```
#
# Without the `<`, `struct` and numpy use the machine's **native** byte order. On x86 and
# ARM machines that is little-endian, so the bug is invisible, until the server runs on a
# big-endian machine (IBM Z mainframes, some POWER systems) and every client decodes garbage.
# The SDK's own decoder has the mirror-image habit: `array.array("f", ...)`, or
# `np.frombuffer(..., dtype="float32")` when numpy is installed, both native order, so it
# would misread correct bytes on a big-endian *client*. Write the `<` on both sides. Here is
# what a big-endian pack looks like to a client, and the other classic slip, packing Python's
# float64:

# %%
vector = [0.5, -1.25, 3.0]
for label, packed in (("little-endian float32", struct.pack("<3f", *vector)),
                      ("big-endian float32", struct.pack(">3f", *vector)),
                      ("little-endian float64", struct.pack("<3d", *vector))):
    decoded = np.frombuffer(packed, dtype="<f4")
    print(f"{label:22} {base64.b64encode(packed).decode():34} decoded as <f4: {decoded}")
print("this machine is", sys.byteorder + "-endian; numpy's native float32 is", np.dtype("=f4").str)

# %% [markdown]
# A lab engine's answer, both ways:

# %%
as_floats = post(V1["vllm"], "/embeddings", {"model": EMBED_MODEL, "input": "hello"}).body["data"][0]["embedding"]
as_base64 = post(V1["vllm"], "/embeddings", {"model": EMBED_MODEL, "input": "hello",
                                             "encoding_format": "base64"}).body["data"][0]["embedding"]
print(len(as_floats), "floats:", as_floats[:3], "…")
print(len(as_base64), "base64 characters:", as_base64[:40], "…")

# %% [markdown]
# ### Exercise 5 · Decode, then check (2 points)
#
# Write `decode_embedding(b64)`, the vector as a list of Python floats, decoding the bytes
# explicitly as little-endian float32. Then `check_embeddings(base_url, model)`: ask for the
# same two strings, in one request each, with `encoding_format` `"float"` and `"base64"`, and
# report for each vector whether the decoded base64 equals the float list: the same length,
# and the same values to float32 precision (`np.allclose(a, b, rtol=1e-6, atol=1e-7)`).
# Return exactly one `Finding` per vector, so two: a refused request or a bad body gives two
# failed findings, not an exception and not an empty list.

# %% [markdown]
# #### Hints for exercise 5
#
# <details><summary>Hint 1 · Say the layout</summary>
#
# `base64.b64decode(b64)` gives bytes; `struct.unpack(f"<{len(raw) // 4}f", raw)` reads them as
# little-endian float32 (`np.frombuffer(raw, dtype="<f4")` too). Without the `<f4`, numpy
# reads float64.
# </details>
#
# <details><summary>Hint 2 · Python floats</summary>
#
# `list(struct.unpack(...))` is already a list of Python floats; from numpy use `.tolist()`.
# </details>
#
# <details><summary>Hint 3 · One finding per vector, whatever happens</summary>
#
# Loop over the indexes of the two inputs. Inside the loop, `try` to read both vectors and
# decode; on any error append a failed `Finding` for that index and `continue`.
# </details>

# %% nbgrader={"grade": false, "grade_id": "embeddings", "locked": false, "schema_version": 3, "solution": true, "task": false}
def decode_embedding(b64):
    ### BEGIN SOLUTION
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    ### END SOLUTION


def check_embeddings(base_url, model):
    ### BEGIN SOLUTION
    inputs = ["The quick brown fox.", "jumps over the lazy dog"]
    floats = post(base_url, "/embeddings", {"model": model, "input": inputs, "encoding_format": "float"})
    packed = post(base_url, "/embeddings", {"model": model, "input": inputs, "encoding_format": "base64"})
    findings = []
    for index in range(len(inputs)):
        label = f"base64 embedding {index}"
        expected = "little-endian float32, equal to the float list"
        try:
            reference = floats.body["data"][index]["embedding"]
            decoded = decode_embedding(packed.body["data"][index]["embedding"])
        except (TypeError, KeyError, IndexError, ValueError, struct.error) as exc:
            findings.append(Finding(label, expected, f"{floats.status}/{packed.status} {exc!r}", False))
            continue
        same = len(decoded) == len(reference) and bool(np.allclose(decoded, reference, rtol=1e-6, atol=1e-7))
        observed = f"{len(decoded)} values {np.round(decoded[:3], 4).tolist()} vs {len(reference)} " \
                   f"{np.round(reference[:3], 4).tolist()}"
        findings.append(Finding(label, expected, observed, same))
    return findings
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_embeddings", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
try:
    got = decode_embedding(base64.b64encode(struct.pack("<3f", 1.0, -2.5, 0.25)).decode())
except NotImplementedError:
    raise AssertionError("Exercise 5 is not answered yet: decode_embedding still raises NotImplementedError") from None
except Exception as exc:
    raise AssertionError("the bytes of 1.0, -2.5, 0.25 as little-endian float32 should decode to [1.0, -2.5, 0.25], "
                         f"but decode_embedding raised {type(exc).__name__}: {exc}") from None
assert got == [1.0, -2.5, 0.25], \
    f"the bytes of 1.0, -2.5, 0.25 as little-endian float32 should decode to [1.0, -2.5, 0.25], but decode_embedding returned {got!r}"
findings = check_embeddings(V1["ollama"], EMBED_MODEL)
assert len(findings) == 2 and all(f.ok for f in findings), \
    f"the ollama profile packs base64 correctly, so two passed findings (one per vector) are expected, but check_embeddings returned {table(findings).to_dict('records')}"
refused = check_embeddings(V1["vllm"], "no-such-model")  # a fault case: the request is refused
assert len(refused) == 2 and not any(f.ok for f in refused), \
    f"a refused request gives one failed finding per vector, two, but check_embeddings returned {table(refused).to_dict('records')}"
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(6)
vector = rng.standard_normal(768).astype("<f4")
decoded = decode_embedding(base64.b64encode(vector.tobytes()).decode())
assert len(decoded) == 768, f"768 float32 values are 3072 bytes, so 768 numbers, but decode_embedding returned {len(decoded)}"
assert decoded == vector.astype(float).tolist(), "decode_embedding should return the exact float32 values packed, but some differ"
kinds = sorted({type(x).__name__ for x in decoded})
assert kinds == ["float"], f"decode_embedding should return a list of Python floats, but its items are of types {kinds}"
got = decode_embedding(base64.b64encode(struct.pack("<f", 1e-3)).decode())
expected = [struct.unpack("<f", struct.pack("<f", 1e-3))[0]]
assert got == expected, f"one float32 (1e-3) should decode to {expected!r}, but decode_embedding returned {got!r}"
got = decode_embedding("")
assert got == [], f"no bytes are no numbers, so decode_embedding('') is [], but it returned {got!r}"
for name in ("ollama-legacy", "llamacpp", "vllm"):
    findings = check_embeddings(V1[name], EMBED_MODEL)
    assert len(findings) == 2 and all(f.ok for f in findings), \
        f"the {name} engine packs base64 correctly, so two passed findings are expected, but check_embeddings returned {table(findings).to_dict('records')}"
findings = check_embeddings(simulator(), EMBED_MODEL)
assert len(findings) == 2 and all(f.ok for f in findings), \
    f"the fixed PR packs base64 correctly, so two passed findings are expected, but check_embeddings returned {table(findings).to_dict('records')}"
for quirk in ("embeddings-big-endian", "embeddings-float64"):
    findings = check_embeddings(simulator(quirk), EMBED_MODEL)
    assert len(findings) == 2 and not any(f.ok for f in findings), \
        f"the simulator with quirk {quirk} {QUIRKS[quirk]}, so two failed findings are expected, but check_embeddings returned {[f.ok for f in findings]}"
### END HIDDEN TESTS
print("✓ decode_embedding and check_embeddings: every check in this cell passed")

# %% [markdown]
# ## `n`, `best_of`, and what vLLM adds
#
# `n` asks for several choices in one request: `choices` holds `n` entries with `index` 0 to
# n−1, and a stream interleaves chunks for all of them, each with its own `finish_reason`.
# Ollama accepts `n` and ignores it (one choice back, no error), so a client that asked for
# three drafts silently gets one. `best_of` comes from the legacy completions API (some
# engines, the lab engine among them, accept it on chat too): generate that many candidates
# and return the best `n`, so never more than `n` choices.

# %%
for name, base_url in V1.items():
    print(f"{name:14} n=3 -> {len(chat(base_url, MODEL, n=3).body['choices'])} choices")

# %% [markdown]
# vLLM also accepts sampling parameters the OpenAI API does not have (`top_k`,
# `repetition_penalty`, `min_p`, …) and adds a field to each choice: `stop_reason`, the stop
# string (or token id) that ended the reply, or null. The SDK sends extra parameters with
# `extra_body`, and keeps unknown response fields instead of dropping or rejecting them: they
# are in each object's `model_extra`.

# %%
client = openai.OpenAI(base_url=V1["vllm"], api_key="lab", max_retries=0, timeout=10)
reply = client.chat.completions.create(model=MODEL, messages=HELLO, stop=["engine", "model"],
                                       extra_body={"top_k": 20, "repetition_penalty": 1.1})
choice = reply.choices[0]
print("finish_reason:", choice.finish_reason, "| model_extra:", choice.model_extra)
print("content:", choice.message.content)

# %% [markdown]
# `stop_reason` is an **extension**, not a violation. OpenAI adds fields to its own responses
# over time, and its SDKs keep fields they do not know instead of rejecting them (Python: in
# `model_extra`), so a client that fails on an unknown field would break on OpenAI itself. A
# checker that flags `stop_reason` would fail every vLLM deployment for nothing.
#
# Parameters it does not know are the other direction, and there refusing is allowed: OpenAI
# itself answers `top_k` with 400, `invalid_request_error`, "Unrecognized request argument
# supplied: top_k" (as users report, e.g. in the issue tracker of
# `xlinx/sd-webui-decadetw-auto-prompt-llm`, #29). vLLM accepts them, OpenAI refuses them, and
# both are fine. What *would* be a violation is an extension that changes a standard field, a
# crash, or a refusal in another envelope than OpenAI's error object (FastAPI's 422 with
# `detail`, for one).
#
# ### Exercise 6 · Choices and extras (1 point)
#
# Write `check_choices(base_url, model)`, returning `Finding`s for:
#
# - `n=2`, non-streamed: exactly two choices, indexes 0 and 1;
# - `n=2`, streamed: chunks for indexes 0 and 1 and nothing else, each with a finish reason;
# - `n=1, best_of=2`: exactly one choice;
# - extra parameters (`top_k`, `repetition_penalty`), sent with `chat()` so you see the whole
#   answer: accepted (200), or refused the way OpenAI refuses them (400 with an OpenAI error);
#   any other answer (a 422 with `detail`, a 500) is a failed check;
# - `stop_reason`, on a plain request through the `openai` SDK: absent, or a string, an integer
#   or null, on every choice of the reply (read it from `model_extra`). Present is fine.
#
# Create the SDK client with `max_retries=0` and a timeout; catch `openai.APIError` so a
# refusal becomes a failed check.

# %% [markdown]
# #### Hints for exercise 6
#
# <details><summary>Hint 1 · Counting choices</summary>
#
# From a non-streamed 200, `sorted(choice["index"] for choice in body["choices"])` must be
# `[0, 1]`. For the stream, `exchange.finish_reasons()` gives `{index: reason}`: both indexes,
# each with a reason.
# </details>
#
# <details><summary>Hint 2 · Extras: two good answers</summary>
#
# `ok = exchange.status == 200 or (exchange.status == 400 and is_openai_error(exchange.status, exchange.body))`.
# Refusing an unknown parameter is what OpenAI does; the envelope is what matters.
# </details>
#
# <details><summary>Hint 3 · stop_reason is allowed</summary>
#
# For each `choice` of the SDK's reply, `extra = choice.model_extra or {}`; the check passes when
# `extra.get("stop_reason")` is None, a `str` or an `int`. Its presence alone is no fault.
# </details>

# %% nbgrader={"grade": false, "grade_id": "check_choices", "locked": false, "schema_version": 3, "solution": true, "task": false}
def check_choices(base_url, model):
    ### BEGIN SOLUTION
    findings = []
    whole = chat(base_url, model, n=2, max_tokens=8)
    indexes = sorted(choice.get("index") for choice in (whole.body or {}).get("choices", [])) \
        if whole.status == 200 else []
    findings.append(Finding("n=2", "choices 0 and 1", f"{whole.status} choices {indexes}", indexes == [0, 1]))
    streamed = chat(base_url, model, n=2, max_tokens=8, stream=True)
    reasons = streamed.finish_reasons() if streamed.status == 200 else {}
    ok = sorted(reasons) == [0, 1] and all(reasons.values())
    findings.append(Finding("n=2 (streamed)", "choices 0 and 1, each finished", f"{streamed.status} {reasons}", ok))
    best = chat(base_url, model, n=1, best_of=2, max_tokens=8)
    count = len((best.body or {}).get("choices", [])) if best.status == 200 else 0
    findings.append(Finding("n=1, best_of=2", "one choice", f"{best.status} {count} choices", count == 1))
    extra = chat(base_url, model, max_tokens=8, top_k=20, repetition_penalty=1.1)
    ok = extra.status == 200 or (extra.status == 400 and is_openai_error(extra.status, extra.body))
    findings.append(Finding("extra parameters top_k, repetition_penalty", "200, or 400 with an OpenAI error",
                            describe(extra), ok))
    client = openai.OpenAI(base_url=base_url, api_key="lab", max_retries=0, timeout=10)
    try:
        reply = client.chat.completions.create(model=model, messages=HELLO, max_tokens=8, stop=["engine"])
    except openai.APIError as exc:
        observed = f"{type(exc).__name__}: {exc}"[:120]
        findings.append(Finding("stop_reason", "absent, or a string, an integer or null", observed, False))
        return findings
    extras = [choice.model_extra or {} for choice in reply.choices]
    ok = all(extra.get("stop_reason") is None or isinstance(extra["stop_reason"], (str, int)) for extra in extras)
    observed = ", ".join(repr(extra["stop_reason"]) if "stop_reason" in extra else "absent" for extra in extras)
    findings.append(Finding("stop_reason", "absent, or a string, an integer or null", observed, ok))
    return findings
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_check_choices", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
try:
    findings = check_choices(V1["llamacpp"], MODEL)
except NotImplementedError:
    raise AssertionError("Exercise 6 is not answered yet: check_choices still raises NotImplementedError") from None
failed = [f.check for f in findings if not f.ok]
assert findings and not failed, \
    f"llama-server honours n and accepts extra parameters, so every check should pass, but these failed: {failed or 'no findings at all'}"
assert not all(f.ok for f in check_choices(V1["ollama"], MODEL)), \
    "the ollama profile ignores n (one choice back), so some check must fail, but check_choices passed them all"  # a fault case
### BEGIN HIDDEN TESTS
failed = [f.check for f in check_choices(V1["vllm"], MODEL) if not f.ok]
assert not failed, f"vLLM honours n and its stop_reason is an extension, not a violation, but these checks failed: {failed}"
assert not all(f.ok for f in check_choices(V1["ollama-legacy"], MODEL)), \
    "ollama-legacy ignores n, so some check must fail, but check_choices passed them all"
for quirks in ((), ("stop-reason",)):
    failed = [f.check for f in check_choices(simulator(*quirks), MODEL) if not f.ok]
    assert not failed, f"the fixed PR (quirks {list(quirks)}) honours n and tolerates extras, but these checks failed: {failed}"
for quirk in ("n-ignored", "extras-rejected"):
    assert not all(f.ok for f in check_choices(simulator(quirk), MODEL)), \
        f"the simulator with quirk {quirk} {QUIRKS[quirk]}, so some check must fail, but check_choices passed them all"
### END HIDDEN TESTS
print("✓ check_choices: every check in this cell passed")

# %% [markdown]
# ## The report
#
# One more promise: errors in the OpenAI shape everywhere, not only for bad parameters. An
# unknown model is the most common refusal a client sees.
#
# ### Exercise 7 · `conformance_report` (1 point)
#
# Write `check_errors(base_url, model, embed_model)`: an unknown model on `/chat/completions`
# (non-streamed and streamed) and on `/embeddings` must get **404** with an OpenAI error (one
# `Finding` each). A single-model llama-server fails all three with a 200: it serves its one model
# under any name (only its router mode refuses unknown names), so the spec's 404 never comes.
# Then `conformance_report(base_url, model, embed_model=EMBED_MODEL)`: every
# finding of `check_params`, `check_structured`, `check_embeddings` (with `embed_model`),
# `check_choices` and `check_errors`, in that order, as one DataFrame from `table()`: columns
# `check`, `expected`, `observed`, `ok`, **every** check, passed or not, one row each, with the
# plain index `table()` gives (0, 1, 2, …).

# %% [markdown]
# #### Hints for exercise 7
#
# <details><summary>Hint 1 · Three probes</summary>
#
# `chat(base_url, missing)`, `chat(base_url, missing, stream=True)` and
# `post(base_url, "/embeddings", {"model": missing, "input": "hi"})`; each passes only with
# `status == 404` and `is_openai_error(...)`.
# </details>
#
# <details><summary>Hint 2 · The report is everything</summary>
#
# Concatenate the five lists of findings in the order given and return `table(findings)`. Do not
# filter: a report without its passed rows cannot tell "passed" from "never checked".
# </details>

# %% nbgrader={"grade": false, "grade_id": "report", "locked": false, "schema_version": 3, "solution": true, "task": false}
def check_errors(base_url, model, embed_model):
    ### BEGIN SOLUTION
    missing = "no-such-model:latest"
    probes = [("unknown model", chat(base_url, missing)),
              ("unknown model (streamed)", chat(base_url, missing, stream=True)),
              ("unknown embedding model", post(base_url, "/embeddings", {"model": missing, "input": "hi"}))]
    return [Finding(label, "404 with an OpenAI error", describe(exchange),
                    exchange.status == 404 and is_openai_error(exchange.status, exchange.body))
            for label, exchange in probes]
    ### END SOLUTION


def conformance_report(base_url, model, embed_model=EMBED_MODEL):
    ### BEGIN SOLUTION
    findings = [*check_params(base_url, model), *check_structured(base_url, model),
                *check_embeddings(base_url, embed_model), *check_choices(base_url, model),
                *check_errors(base_url, model, embed_model)]
    return table(findings)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_report", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
try:
    report = conformance_report(V1["ollama"], MODEL)
except NotImplementedError:
    raise AssertionError("Exercise 7 is not answered yet: conformance_report (or a check it calls) still raises NotImplementedError") from None
assert list(report.columns) == ["check", "expected", "observed", "ok"], \
    f"the report's columns should be ['check', 'expected', 'observed', 'ok'], but they are {list(report.columns)}"
assert len(report) > 0 and report.ok.dtype == bool, \
    f"the report should have rows and a boolean ok column, but it has {len(report)} rows and ok of type {report.ok.dtype}"
assert report.ok.any() and not report.ok.all(), \
    (f"the ollama profile passes most checks and fails n, so the report holds passed and failed rows, "
     f"but it has {int(report.ok.sum())} passed of {len(report)}")  # a fault case
report[~report.ok]
### BEGIN HIDDEN TESTS
failed = [f.check for f in check_errors(V1["vllm"], MODEL, EMBED_MODEL) if not f.ok]
assert not failed, f"vLLM answers an unknown model with 404 and an OpenAI error, but these checks failed: {failed}"
passed = [f.check for f in check_errors(V1["llamacpp"], MODEL, EMBED_MODEL) if f.ok]
assert not passed, \
    f"a single-model llama-server answers an unknown model with 200 (it serves its one model under any name), so no 404 check may pass, but these passed: {passed}"
failed = [f.check for f in check_errors(simulator(), MODEL, EMBED_MODEL) if not f.ok]
assert not failed, f"the fixed PR answers an unknown model with 404 and an OpenAI error, but these checks failed: {failed}"
assert not all(f.ok for f in check_errors(simulator("plain-404"), MODEL, EMBED_MODEL)), \
    "the simulator with quirk plain-404 answers an unknown model in plain text, so some check must fail, but check_errors passed them all"
for base_url in (V1["ollama-legacy"], simulator("plain-404", "n-ignored")):
    report = conformance_report(base_url, MODEL)
    parts = [check_params(base_url, MODEL), check_structured(base_url, MODEL), check_embeddings(base_url, EMBED_MODEL),
             check_choices(base_url, MODEL), check_errors(base_url, MODEL, EMBED_MODEL)]
    expected = table([finding for part in parts for finding in part])
    assert list(report.columns) == ["check", "expected", "observed", "ok"] and report.ok.dtype == bool, \
        f"the report's columns should be check, expected, observed, ok (bool), but they are {dict(report.dtypes.astype(str))}"
    assert report["check"].tolist() == expected["check"].tolist(), \
        f"the report should hold every check of the five checkers, in order, passed or not ({len(expected)} rows), but it has {len(report)} rows that differ"
    assert report["ok"].tolist() == expected["ok"].tolist(), "the report's ok column should match what each checker found, but it differs"
    assert list(report.index) == list(range(len(report))), \
        f"the report should keep table()'s plain index 0, 1, 2, …, but its index starts {list(report.index)[:5]}"
rows = len(conformance_report(simulator(), MODEL, EMBED_MODEL))
assert rows >= 20, f"the report on the fixed PR should list every check, passed or not (at least 20), but it has {rows} rows"
### END HIDDEN TESTS
print("✓ check_errors and conformance_report: every check in this cell passed")

# %% [markdown]
# ## The review
#
# Every engine, one report each, and the PR's simulator twice: as first submitted (five of
# the bugs the review found) and as fixed. Each cell of the map is one area of the spec; its
# colour is the share of checks passed there.

# %% nbgrader={"grade": false, "grade_id": "demo_report", "locked": true, "schema_version": 3, "solution": false, "task": false}
AREAS = {"parameter ranges": lambda url: check_params(url, MODEL),
         "structured output": lambda url: check_structured(url, MODEL),
         "base64 embeddings": lambda url: check_embeddings(url, EMBED_MODEL),
         "n, best_of, extras": lambda url: check_choices(url, MODEL),
         "error objects": lambda url: check_errors(url, MODEL, EMBED_MODEL)}
TARGETS = {**{f"lab: {name}": url for name, url in V1.items()},
           "PR, first draft": simulator("validate-non-streamed-only", "naive-json-schema",
                                        "stop-cuts-json-when-streamed", "embeddings-big-endian", "plain-404"),
           "PR, fixed": simulator("stop-reason")}
passed = pd.DataFrame({area: {target: [f.ok for f in run(url)] for target, url in TARGETS.items()}
                       for area, run in AREAS.items()})
share = passed.map(lambda oks: sum(oks) / len(oks))

fig, ax = plt.subplots(figsize=(10, 4.6))
image = ax.imshow(share.to_numpy(dtype=float), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
ax.set_xticks(range(len(share.columns)), share.columns, rotation=15, ha="right")
ax.set_yticks(range(len(share.index)), share.index)
for row, target in enumerate(share.index):
    for column, area in enumerate(share.columns):
        oks = passed.loc[target, area]
        dark = not 0.2 < share.loc[target, area] < 0.85
        ax.text(column, row, f"{sum(oks)}/{len(oks)}", ha="center", va="center", color="white" if dark else "black")
ax.set_title("OpenAI spec conformance: checks passed per area")
fig.colorbar(image, ax=ax, label="share of checks passed")
fig.tight_layout()
plt.show()

# %% [markdown]
# Reading the map:
#
# - **`ollama`** validates parameters (on purpose: real Ollama does not) but ignores `n`.
# - **`ollama-legacy`** (Ollama 0.4.7's `/v1`) validates nothing, ignores `json_schema`
#   (the reply is prose) and `n`.
# - **`llamacpp`** honours `n` and schemas but accepts any parameter value, and its error
#   objects lack `param`.
# - **`vllm`** passes everything but `top_p: 0`, which it refuses (stricter than the spec);
#   `stop_reason` passes: an extension is not a violation.
# - **The PR's first draft** validated only the non-streamed path, faked schemas from `type`
#   alone, cut streamed JSON at stop strings, packed embeddings big-endian, and answered an
#   unknown model in plain text. Each bug shows up in exactly one area, and the fixed PR is
#   green everywhere.
#
# If a real engine answers on this machine (a real Ollama, or the kit's real tier), its report
# is below (embeddings left out: a chat model does not embed); while grading there are none.

# %% nbgrader={"grade": false, "grade_id": "demo_real_engines", "locked": true, "schema_version": 3, "solution": false, "task": false}
for label, (base_url, model) in real_engines().items():
    try:
        findings = [*check_params(base_url, model), *check_structured(base_url, model),
                    *check_choices(base_url, model), *check_errors(base_url, model, model)]
    except httpx.HTTPError as exc:  # a real model on a laptop can outlast the checks' 10 s timeout
        print(f"{label}: {type(exc).__name__} {exc}")
        continue
    failed = table(findings)[lambda t: ~t.ok]
    print(f"{label}: {len(findings) - len(failed)}/{len(findings)} checks passed")
    print(failed.to_string(max_colwidth=60) if len(failed) else "")

# %% [markdown]
# ## What you built
#
# A conformance checker that turns "OpenAI-compatible" from a claim into a table: parameter
# ranges probed from both sides and on both code paths, error objects held to their four
# fields, structured output validated against schemas that break naive generators (and a
# generator that does not break), stop sequences that must leave JSON whole, base64 embeddings
# decoded as the bytes the spec defines, `n` and `best_of`, and vLLM's extensions tolerated as
# a strict client must. Pointed at a pull request, it reviews the wire, not the code; pointed at
# a new engine release, it tells you which shims your application still needs.

# %% [markdown]
# ## Check your work
#
# Save the notebook (Ctrl+S), then run the cell below. It grades the notebook **as saved** the
# way your instructor's `compatlab grade` will: in the same sandbox, hidden tests included
# (unless your course keeps them for grading; the table then says so). You see each test's
# verdict, points and message, never the tests' code; a failure that looks like a known
# mistake names it and points to the hint. `check("is_openai_error")` shows one exercise's tests;
# from a terminal, `compatlab check spec-compliance.ipynb` does the same.

# %% nbgrader={"grade": false, "grade_id": "check_your_work", "locked": true, "schema_version": 3, "solution": false, "task": false}
from compatlab.selfcheck import check

check()
