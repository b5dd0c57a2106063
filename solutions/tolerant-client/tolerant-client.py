# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 5 of 6 · A tolerant client
#
# "OpenAI-compatible" engines agree on the big picture and disagree in the details: where the
# text is, what shape tool arguments take, what the token counts are called, how a stream ends
# and how it fails. The official `openai` SDK is lenient in some of these places and silent in
# others: on some engines it hands you a reply that was cut short without a word. In this
# lesson you write the small client that an application can trust with any of them:
#
# 1. text that arrives as a string, as `null`, or as a list of parts;
# 2. tool arguments that arrive as a JSON string or as an object, checked to be an object;
# 3. token counts under any of the three names engines use;
# 4. an SSE reader that survives multi-line events, comments, a missing `[DONE]` and error events;
# 5. tool calls streamed in fragments, joined by their `index`;
# 6. one function, `chat`, that turns every HTTP and connection failure into one error type
#    carrying the server's own words, and never returns a reply that was cut short.
#
# **How this notebook is graded.** Seven test cells, 15 points. Visible asserts check the easy
# cases; hidden tests, added at grading time, run your code against four lab engines that
# differ the way real engines differ, a recorded stream from llama-server, crafted streams, and
# a deliberately odd engine. Nothing is graded on what a model says, only on protocol behaviour.

# %% [markdown]
# ## Where engines disagree
#
# | what | the spec (and most engines) | what you will also meet |
# |---|---|---|
# | `message.content` | a string, or `null` next to tool calls | a list of parts `[{"type": "text", "text": …}]`, the shape requests may use; proxies and some providers answer in it too |
# | tool-call `arguments` | a JSON **string** | an **object** (Ollama's native API; proxies that re-wrap it); an empty string for a call without arguments; JSON that is not an object |
# | token counts | `usage.prompt_tokens`, `usage.completion_tokens` | `input_tokens` / `output_tokens` (OpenAI's Responses API, Anthropic); `prompt_eval_count` / `eval_count` (Ollama's native API); reasoning tokens inside `completion_tokens_details` |
# | streamed usage | a last chunk with `"choices": []`, if you ask with `stream_options` | nothing at all (Ollama before 0.5.2 ignores the option); `timings` beside it (llama-server) |
# | the stream's end | a chunk with `finish_reason`, then `data: [DONE]` | no `[DONE]`; on Ollama's `/v1`, a failure mid-reply simply ends the stream: no error, no finish reason |
# | errors mid-stream | (the spec says nothing) | `data: {"error": {...}}` (llama-server, vLLM), with or without `[DONE]` after it |
# | streamed tool calls | fragments of `arguments`, keyed by `index` | whole calls in one delta (Ollama); the name repeated in every fragment (some proxies) |
# | reasoning text | (not in the spec) | `reasoning` (Ollama), `reasoning_content` (llama-server, vLLM) |
#
# The lab engines below reproduce the engine-specific rows exactly; a small odd engine in the
# setup cell does the rest all at once.

# %% [markdown]
# ## Setup
#
# Four lab engines, one per profile: `ollama` (current Ollama), `ollama-legacy` (Ollama
# 0.4.7's `/v1`), `llamacpp` (llama-server) and `vllm`. `ODD` is a tiny engine written in this
# cell that answers with every quirk from the table at once; read it, it is short.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import itertools
import json
import threading
from dataclasses import dataclass, field

import httpx
import matplotlib.pyplot as plt
import openai
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from compatlab import traces
from compatlab.backends import lab_engines
from compatlab.lessonkit import black_hole, closed_port, serve_app

PROFILES = ("ollama", "ollama-legacy", "llamacpp", "vllm")
ENGINES = lab_engines(PROFILES)
V1 = {profile: f"{url}/v1" for profile, url in ENGINES.items()}  # what OPENAI_BASE_URL would hold
MODEL = "lab:latest"
THINKER = "lab-think:latest"
HELLO = [{"role": "user", "content": "Say hello."}]
WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class EngineError(Exception):
    """Anything that went wrong talking to an engine, in one type.

    message -- what happened, for a log line (str(error) is this).
    status  -- the HTTP status when the engine answered with one (404, 500, ...), or the numeric
               `code` of an error event mid-stream; None when there was no answer at all.
    detail  -- the engine's own words (its error message), or the underlying exception's text
               when there was no answer; never None.
    """

    def __init__(self, message, *, status=None, detail=""):
        super().__init__(message)
        self.message, self.status, self.detail = message, status, detail


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict


@dataclass
class Usage:
    """Token counts; None where the engine did not say (0 is a count, not "missing")."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass
class Reply:
    """One whole assistant reply, the same whatever engine and whether streamed or not."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None


def trace_lines(name):
    """The response lines of a recorded real stream (see data/traces/README.md)."""
    return [entry["line"] for entry in traces.load(name)["lines"]]


@dataclass
class Outcome:
    finished: bool
    value: object = None
    error: BaseException | None = None


def within(seconds, function, *args, **kwargs):
    """Call `function` in a thread and wait at most `seconds`: a call that hangs is abandoned,
    so a test fails fast instead of waiting forever."""
    outcome = Outcome(False)

    def run():
        try:
            outcome.value = function(*args, **kwargs)
        except BaseException as exc:  # kept for the caller
            outcome.error = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    outcome.finished = not thread.is_alive()
    return outcome


# ---- ODD: an engine with every quirk of the table at once -------------------------------
odd = FastAPI()
ODD_CALL = {"id": "call_odd", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}  # an object, not a string
ODD_USAGE = {"input_tokens": 12, "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 4}}


@odd.post("/v1/chat/completions")
async def odd_chat(body: dict):
    wants_tool = bool(body.get("tools"))
    if not body.get("stream"):
        message = {"role": "assistant", "content": [{"type": "text", "text": "Hello"},
                                                    {"type": "text", "text": " there."}]}
        if wants_tool:
            message = {"role": "assistant", "content": None, "tool_calls": [ODD_CALL]}
        return {"id": "odd-1", "object": "chat.completion", "model": body.get("model"), "usage": ODD_USAGE,
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if wants_tool else "stop"}]}

    def chunk(delta, finish=None, **extra):
        return {"id": "odd-1", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}

    async def events():
        yield ": the odd engine says hello (a comment line)\n\n"
        if wants_tool:
            yield f"data: {json.dumps(chunk({'role': 'assistant', 'tool_calls': [ODD_CALL]}))}\n\n"
            last = chunk({}, "tool_calls", usage=ODD_USAGE)
        else:
            yield f"data: {json.dumps(chunk({'role': 'assistant', 'content': [{'type': 'text', 'text': 'Hello'}]}))}\n\n"
            yield "event: ping\n\n"  # an event with no data: a keep-alive done wrong
            head, tail = json.dumps(chunk({"content": " there."})).split(', "choices"')
            yield f'data: {head},\ndata: "choices"{tail}\n\n'  # one event, two data lines
            last = chunk({}, "stop", usage=ODD_USAGE)
        yield f"data: {json.dumps(last)}"  # no blank line after it, and no [DONE]: the body just ends

    return StreamingResponse(events(), media_type="text/event-stream")


odd_server = serve_app(odd)
ODD = odd_server.__enter__().url + "/v1"  # served until the kernel stops

print("engines:", V1)
print("odd engine:", ODD)

# %% [markdown]
# ## The same question, four engines
#
# A raw look first. The cell below asks each engine for a streamed tool call and prints each
# SSE line's `delta` (and anything next to the choices), so you can compare the shapes:

# %%
def show_stream(base_url, body):
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                event = json.loads(line[6:])
                extras = {k: v for k, v in event.items() if k in ("usage", "timings")}
                deltas = [(c.get("delta"), c.get("finish_reason")) for c in event["choices"]]
                print("   ", deltas, extras if extras else "")
            elif line:
                print("   ", line)


ask = {"model": MODEL, "messages": WEATHER, "tools": [WEATHER_TOOL], "stream": True,
       "stream_options": {"include_usage": True}}
for profile in PROFILES:
    print(profile)
    show_stream(V1[profile], ask)

# %% [markdown]
# Ollama sends each call whole, with its arguments as one JSON string; llama-server and vLLM
# send the name first and the arguments in pieces, each piece keyed by the call's `index`. The
# legacy Ollama repeats `role` on every chunk, puts the finish reason on a content chunk and
# ignores `include_usage`. Only the `delta`s and the end matter to a client; the rest is
# decoration that varies.
#
# ## What the official SDK does with a failing stream
#
# Each lab engine has a model that fails after a few tokens (`lab:error-mid-stream`). Here is
# what the `openai` SDK reports on each engine:

# %%
for profile in PROFILES:
    sdk = openai.OpenAI(base_url=V1[profile], api_key="unused", max_retries=0)
    text, finish = "", None
    try:
        for chunk in sdk.chat.completions.create(model="lab:error-mid-stream", messages=HELLO, stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
        outcome = f"no error; finish_reason={finish!r}"
    except openai.APIError as exc:
        outcome = f"{type(exc).__name__}: {exc.message}"
    print(f"{profile:14} text={text!r:24} {outcome}")

# %% [markdown]
# On llama-server and vLLM the engine says what went wrong and the SDK raises it. On Ollama's
# `/v1`, the engine's error never reaches the wire: the stream just stops, and the SDK returns a
# short reply as if it were whole. The one tell is that **no chunk carried a `finish_reason`**.
# A tolerant client must check that: a stream that ends without a finish reason is incomplete,
# whether or not `[DONE]` came.

# %% [markdown]
# ## Exercise 1 · Text from any content
#
# Write `content_text(content)`, the text of a message or delta's `content`:
#
# - a string is the text; `None` (a delta with no text, a message with only tool calls) is `""`;
# - a list of parts is the concatenation, in order and with nothing in between, of the `text`
#   of each part whose `type` is `"text"`; a part that is a plain string counts as text; parts
#   of other types (`image_url`, `input_audio`, `refusal`, …) carry no text and are skipped;
# - anything else (a number, an object, a part that is not an object or a string) raises
#   `EngineError`, saying what it got.

# %% nbgrader={"grade": false, "grade_id": "content_text", "locked": false, "schema_version": 3, "solution": true, "task": false}
def content_text(content):
    ### BEGIN SOLUTION
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise EngineError(f"content must be a string, null or a list of parts, not {type(content).__name__}: {content!r}")
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            if part.get("type") == "text":
                texts.append(part.get("text") or "")
        else:
            raise EngineError(f"a content part must be an object or a string, not {type(part).__name__}: {part!r}")
    return "".join(texts)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_content_text", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert content_text("Hello.") == "Hello."
assert content_text(None) == ""
assert content_text([{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo."}]) == "Hello."
### BEGIN HIDDEN TESTS
assert content_text("") == ""
assert content_text([]) == ""
assert content_text([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                     "b", {"type": "refusal", "refusal": "no"}, {"type": "text", "text": " c"}]) == "ab c"
assert content_text([{"type": "text", "text": "  spaced  "}, {"type": "text", "text": "\n"}]) == "  spaced  \n"
for bad in (42, {"type": "text", "text": "x"}, [{"type": "text", "text": "x"}, 7], 1.5):
    try:
        content_text(bad)
    except EngineError as error:
        assert str(error), "the error should say what it got"
    else:
        raise AssertionError(f"content_text({bad!r}) should raise EngineError")
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2 · Tool arguments, checked
#
# The spec says `function.arguments` is a string holding JSON. Ollama's native API sends an
# object, and the model writes that JSON, so it can be broken or be a list. Write
# `tool_arguments(raw)`, returning the arguments as a `dict`:
#
# - an object (`dict`) is returned as it is;
# - a string is decoded as JSON; an empty (or all-whitespace) string or `None` means no
#   arguments, `{}`;
# - JSON that does not decode, or decodes to anything but an object (a list, a number, a
#   string: arguments encoded twice), and any other type, raise `EngineError`. When the
#   arguments were a string, the message contains it exactly as it came, so a log shows what
#   the model wrote.

# %% nbgrader={"grade": false, "grade_id": "tool_arguments", "locked": false, "schema_version": 3, "solution": true, "task": false}
def tool_arguments(raw):
    ### BEGIN SOLUTION
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        raise EngineError(f"tool arguments must be a JSON object or a string holding one, not {type(raw).__name__}: {raw!r}")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise EngineError(f"tool arguments are not valid JSON ({exc}): {raw}", detail=raw) from None
    if not isinstance(value, dict):
        raise EngineError(f"tool arguments must decode to a JSON object, not {type(value).__name__}: {raw}", detail=raw)
    return value
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_tool_arguments", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert tool_arguments('{"city": "Paris"}') == {"city": "Paris"}
assert tool_arguments({"city": "Paris"}) == {"city": "Paris"}
try:
    tool_arguments('{"city": "Par')
except EngineError as error:
    assert '{"city": "Par' in str(error), str(error)
else:
    raise AssertionError("broken JSON should raise EngineError")
### BEGIN HIDDEN TESTS
assert tool_arguments("") == {} and tool_arguments("  \n") == {} and tool_arguments(None) == {}
assert tool_arguments("{}") == {} and tool_arguments({}) == {}
assert tool_arguments('{"a": {"b": [1, 2]}, "c": null}') == {"a": {"b": [1, 2]}, "c": None}
assert tool_arguments(' \n{"city":"Oslo"}\n') == {"city": "Oslo"}
for bad in ('["Paris"]', '"{\\"city\\": \\"Paris\\"}"', "42", "null", "true", "city=Paris", "{'city': 'Paris'}"):
    try:
        tool_arguments(bad)
    except EngineError as error:
        assert bad in str(error), f"the message should show the raw arguments: {error}"
    else:
        raise AssertionError(f"tool_arguments({bad!r}) should raise EngineError")
for bad in (["Paris"], 42, 1.5):
    try:
        tool_arguments(bad)
    except EngineError:
        pass
    else:
        raise AssertionError(f"tool_arguments({bad!r}) should raise EngineError")
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3 · Usage under any name
#
# Write `read_usage(usage)`, turning a usage object (or a native Ollama reply, which carries its
# counts at the top level) into a `Usage`:
#
# | field | read from, first present wins |
# |---|---|
# | `prompt_tokens` | `prompt_tokens`, `input_tokens`, `prompt_eval_count` |
# | `completion_tokens` | `completion_tokens`, `output_tokens`, `eval_count` |
# | `reasoning_tokens` | `reasoning_tokens` inside `completion_tokens_details`, else inside `output_tokens_details` |
#
# "Present" means there and not `null`: a count of `0` is a count. A name that is missing stays
# `None`, never `0`: a client that bills or budgets by tokens must know it was not told. Return
# `None` for `None` or an empty object. (vLLM sends `"completion_tokens_details": null`.)

# %% nbgrader={"grade": false, "grade_id": "read_usage", "locked": false, "schema_version": 3, "solution": true, "task": false}
def read_usage(usage):
    ### BEGIN SOLUTION
    if not usage:
        return None

    def first(source, *names):
        return next((source[name] for name in names if source.get(name) is not None), None)

    details = [usage.get("completion_tokens_details"), usage.get("output_tokens_details")]
    reasoning = next((d["reasoning_tokens"] for d in details
                      if isinstance(d, dict) and d.get("reasoning_tokens") is not None), None)
    return Usage(prompt_tokens=first(usage, "prompt_tokens", "input_tokens", "prompt_eval_count"),
                 completion_tokens=first(usage, "completion_tokens", "output_tokens", "eval_count"),
                 reasoning_tokens=reasoning)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_read_usage", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert read_usage({"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}) == Usage(11, 7, None)
assert read_usage({"input_tokens": 11, "output_tokens": 7}) == Usage(11, 7, None)
assert read_usage(None) is None
### BEGIN HIDDEN TESTS
native = {"model": "lab:latest", "done": True, "done_reason": "stop", "prompt_eval_count": 26,
          "eval_count": 31, "eval_duration": 512000000}
assert read_usage(native) == Usage(26, 31, None)
assert read_usage({}) is None
assert read_usage({"prompt_tokens": 0, "completion_tokens": 0, "eval_count": 5}) == Usage(0, 0, None)
assert read_usage({"prompt_tokens": None, "input_tokens": 3, "completion_tokens": 2}) == Usage(3, 2, None)
assert read_usage({"total_tokens": 9}) == Usage(None, None, None)
assert read_usage({"prompt_tokens": 5, "completion_tokens": 40,
                   "completion_tokens_details": {"reasoning_tokens": 32, "accepted_prediction_tokens": 0}}) == Usage(5, 40, 32)
assert read_usage({"prompt_tokens": 5, "completion_tokens": 40, "completion_tokens_details": None,
                   "prompt_tokens_details": None}) == Usage(5, 40, None)
assert read_usage({"input_tokens": 5, "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 0}}) == Usage(5, 40, 0)
assert read_usage({"prompt_tokens": 5, "completion_tokens": 9, "completion_tokens_details": {}}) == Usage(5, 9, None)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4 · An SSE reader that survives real streams
#
# The `parse_sse` of Lesson 1 (`first-contact`) read a whole body. A client needs the same rules *while the bytes
# arrive*, plus what real engines add. Write the generator `sse_payloads(lines)`: it takes an
# iterable of lines (as `response.iter_lines()` gives them, without line endings) and yields
# each event's JSON object **as soon as the blank line that ends it arrives**:
#
# - lines starting with `:` are comments: skip them; `event:`, `id:` and `retry:` lines carry
#   nothing a chat client needs: skip them too;
# - `data:` lines: drop one space after the colon if there is one; an event's `data:` lines are
#   joined with `"\n"`; a blank line ends the event; an event with no data (a keep-alive such as
#   `event: ping`) is skipped;
# - `[DONE]` ends the stream: stop there and read no further. The input may also just end,
#   with or without a blank line after the last event: that event still counts;
# - an event whose data is not a JSON object raises `EngineError` (with the data in `detail`);
# - an error event, an object with a truthy `"error"` key, raises `EngineError` carrying the
#   engine's words: `detail` is the error's `message` (or the error itself when it is a plain
#   string) and `status` its `code` when that is an integer (else None).

# %% nbgrader={"grade": false, "grade_id": "sse_payloads", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sse_payloads(lines):
    ### BEGIN SOLUTION
    data = []
    for line in itertools.chain(lines, [""]):  # a final "" ends an event the body left open
        if line == "":
            if not data:
                continue
            payload, data = "\n".join(data), []
            if payload == "[DONE]":
                return
            if payload:
                yield _decode_event(payload)
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)


def _decode_event(payload):
    try:
        event = json.loads(payload)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise EngineError(f"an SSE event is not a JSON object: {payload[:200]!r}", detail=payload)
    error = event.get("error")
    if error:
        message, code = str(error), None
        if isinstance(error, dict):
            message, code = str(error.get("message") or error), error.get("code")
        status = code if isinstance(code, int) and not isinstance(code, bool) else None
        raise EngineError(f"the engine reported an error mid-stream: {message}", status=status, detail=message)
    return event
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_sse_payloads", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
assert list(sse_payloads(['data: {"n": 1}', "", ": a comment", 'data: {"n": 2}', "", "data: [DONE]", ""])) == [{"n": 1}, {"n": 2}]
assert list(sse_payloads(['data: {"n": 1}', "", 'data: {"n": 2}'])) == [{"n": 1}, {"n": 2}]  # no [DONE]
try:
    list(sse_payloads(['data: {"error": {"message": "out of memory", "code": 500}}', ""]))
except EngineError as error:
    assert error.detail == "out of memory" and error.status == 500, vars(error)
else:
    raise AssertionError("an error event should raise EngineError")
### BEGIN HIDDEN TESTS
# one event over several data: lines, no space after the colon, other fields, keep-alives
lines = ["event: message", "id: 7", 'data: {"a":', "data:  1,", 'data:"b": 2}', "", "retry: 1000", "",
         "event: ping", "", "data:", "", ':{"not": "an event"}', 'data:{"c": 3}', "", "data: [DONE]"]
assert list(sse_payloads(lines)) == [{"a": 1, "b": 2}, {"c": 3}]
# nothing is read after [DONE]
def then_garbage():
    yield from ['data: {"n": 1}', "", "data: [DONE]", ""]
    raise AssertionError("read past [DONE]")
assert list(sse_payloads(then_garbage())) == [{"n": 1}]
# lazy: the first event is out before the input ends
def slow_body():
    yield from ['data: {"n": 1}', ""]
    raise RuntimeError("the rest of the body has not arrived yet")
assert next(iter(sse_payloads(slow_body()))) == {"n": 1}
# errors in each engine's shape, before and after good events
shapes = {  # event data -> (detail, status)
    '{"error":{"code":500,"message":"an error was encountered while running the model","type":"server_error"}}':
        ("an error was encountered while running the model", 500),
    '{"error":{"message":"an error was encountered while running the model","type":"InternalServerError","param":null,"code":500}}':
        ("an error was encountered while running the model", 500),
    '{"error":"model runner crashed"}': ("model runner crashed", None),
    '{"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}': ("overloaded", None),
}
for data, (detail, status) in shapes.items():
    seen = []
    try:
        for event in sse_payloads(['data: {"n": 1}', "", f"data: {data}", "", "data: [DONE]", ""]):
            seen.append(event)
    except EngineError as error:
        assert (error.detail, error.status) == (detail, status), (data, vars(error))
        assert detail in str(error), str(error)
    else:
        raise AssertionError(f"no EngineError for {data}")
    assert seen == [{"n": 1}], "events before the error must still be delivered"
for bad in (["data: {not json", ""], ["data: [1, 2]", ""], ['data: "text"', ""]):
    try:
        list(sse_payloads(bad))
    except EngineError as error:
        assert error.detail == bad[0][6:], vars(error)
    else:
        raise AssertionError(f"{bad} should raise EngineError")
assert list(sse_payloads([])) == [] and list(sse_payloads(["", ""])) == []
assert list(sse_payloads(['data: {"error": null, "n": 1}', ""])) == [{"error": None, "n": 1}]
# a recorded stream from real llama-server: every JSON event, in order, the text intact
for name in ("llama-server-sse-story", "llama-server-sse-tools", "ollama-front-sse-story"):
    lines = trace_lines(name)
    expected = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    got = list(sse_payloads(lines))
    assert got == expected, f"{name}: {len(got)} events, expected {len(expected)}"
    # and the same stream cut off before its last blank line and [DONE]
    cut = lines[:max(i for i, line in enumerate(lines) if line.startswith("data: {")) + 1]
    assert list(sse_payloads(cut)) == expected, f"{name} without [DONE]"
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 5 · Tool calls in fragments
#
# A streamed tool call arrives as a list of fragments in `delta.tool_calls`, spread over many
# chunks. Fragments with the same `index` belong to the same call: the first usually carries
# `id` and `function.name`, the rest pieces of `function.arguments`, to be concatenated in
# order. Several calls may be interleaved. Write `join_tool_calls(fragments)`: given every
# fragment of a reply in arrival order, return the complete calls as `ToolCall`s, ordered by
# index, with arguments decoded by your `tool_arguments`.
#
# What real streams add: a fragment without an `index` is a whole call of its own (it gets the
# next free index); a name repeated in later fragments is the same name, not more of it; an
# `arguments` that is an object is the whole arguments; an `id` may be missing (use `""`).

# %% nbgrader={"grade": false, "grade_id": "join_tool_calls", "locked": false, "schema_version": 3, "solution": true, "task": false}
def join_tool_calls(fragments):
    ### BEGIN SOLUTION
    calls = {}  # index -> {"id", "name", "arguments"}
    for fragment in fragments:
        index = fragment.get("index")
        if index is None:
            index = max(calls, default=-1) + 1
        call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        function = fragment.get("function") or {}
        call["id"] = fragment.get("id") or call["id"]
        call["name"] = function.get("name") or call["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            call["arguments"] = arguments
        elif arguments:
            call["arguments"] += arguments
    return [ToolCall(call["id"], call["name"], tool_arguments(call["arguments"]))
            for _, call in sorted(calls.items())]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_join_tool_calls", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
fragments = [
    {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
    {"index": 0, "function": {"arguments": '{"city": '}},
    {"index": 0, "function": {"arguments": '"Paris"}'}},
]
assert join_tool_calls(fragments) == [ToolCall("call_1", "get_weather", {"city": "Paris"})]
assert join_tool_calls([]) == []
### BEGIN HIDDEN TESTS
interleaved = [
    {"index": 0, "id": "a", "function": {"name": "get_weather", "arguments": '{"ci'}},
    {"index": 1, "id": "b", "function": {"name": "get_time", "arguments": ""}},
    {"index": 1, "function": {"arguments": '{"zone": "CET"}'}},
    {"index": 0, "function": {"arguments": 'ty": "Oslo"}'}},
]
assert join_tool_calls(interleaved) == [ToolCall("a", "get_weather", {"city": "Oslo"}),
                                        ToolCall("b", "get_time", {"zone": "CET"})]
assert join_tool_calls(list(reversed(interleaved[1:3])) + [interleaved[0], interleaved[3]])[0].name == "get_weather"
repeated = [{"index": 0, "id": "x", "function": {"name": "get_weather", "arguments": '{"city":'}},
            {"index": 0, "function": {"name": "get_weather", "arguments": '"Rome"}'}}]
assert join_tool_calls(repeated) == [ToolCall("x", "get_weather", {"city": "Rome"})]
whole = [{"id": "w1", "function": {"name": "get_weather", "arguments": {"city": "Lima"}}},
         {"id": "w2", "function": {"name": "get_time", "arguments": '{"zone": "PET"}'}}]
assert join_tool_calls(whole) == [ToolCall("w1", "get_weather", {"city": "Lima"}),
                                  ToolCall("w2", "get_time", {"zone": "PET"})]
assert join_tool_calls([{"index": 0, "function": {"name": "ping"}}]) == [ToolCall("", "ping", {})]
try:
    join_tool_calls([{"index": 0, "id": "c", "function": {"name": "get_weather", "arguments": '{"city": "Par'}}])
except EngineError:
    pass
else:
    raise AssertionError("a call whose arguments never complete should raise EngineError")
# real streams from the lab engines: fragments joined equal the non-streamed call
for profile in PROFILES:
    body = {"model": MODEL, "messages": WEATHER, "tools": [WEATHER_TOOL]}
    whole_reply = httpx.post(f"{V1[profile]}/chat/completions", json=body, timeout=10).json()
    expected_call = whole_reply["choices"][0]["message"]["tool_calls"][0]
    with httpx.stream("POST", f"{V1[profile]}/chat/completions", json={**body, "stream": True}, timeout=10) as response:
        streamed = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    pieces = [f for event in streamed for choice in event["choices"] for f in (choice["delta"].get("tool_calls") or [])]
    joined = join_tool_calls(pieces)
    assert joined == [ToolCall(expected_call["id"], "get_weather", json.loads(expected_call["function"]["arguments"]))], (profile, joined)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 6 · `chat`: one function, any engine, one error type
#
# Now put the pieces together. Write
# `chat(base_url, model, messages, *, stream=False, timeout=10.0, **params)`: it POSTs to
# `{base_url}/chat/completions` (`base_url` ends in `/v1`, like `OPENAI_BASE_URL`) with the
# model, the messages, `stream`, and any other parameters (`tools=[...]`, `temperature=0`, …)
# as given, and returns one `Reply`, the same for both values of `stream`:
#
# - `text` and `reasoning`: all of the first choice's content, and its reasoning, whichever
#   field the engine uses (`reasoning` or `reasoning_content`);
# - `tool_calls` as `ToolCall`s, `finish_reason`, and `usage` from `read_usage` (None when the
#   engine sent none). When streaming, ask for usage with
#   `stream_options={"include_usage": True}` unless the caller passed their own
#   `stream_options`; the usage may ride on any chunk, with or without choices;
# - a streamed reply is complete only when some chunk carried a `finish_reason`: a stream that
#   ends without one raises `EngineError`, `[DONE]` or not.
#
# Every failure raises `EngineError`, never an `httpx` error, a `KeyError` or a
# `JSONDecodeError`:
#
# | what happened | `status` | `detail` |
# |---|---|---|
# | the engine answered 4xx/5xx | the HTTP status | the error's `message` from the JSON body (`{"error": {"message": …}}`, or `{"error": "…"}` as Ollama's native API writes it), else the body's text |
# | an error event mid-stream | its `code` if an integer | its message (your `sse_payloads` does this) |
# | no connection, a timeout, a dropped connection | None | the httpx error's text, or its class name when that is empty |
# | a 200 whose body is not a chat completion | 200 | the body's text (the start of it) |
#
# Use `timeout` for httpx's timeout, so a host that never answers cannot hang the caller.

# %% nbgrader={"grade": false, "grade_id": "chat", "locked": false, "schema_version": 3, "solution": true, "task": false}
def chat(base_url, model, messages, *, stream=False, timeout=10.0, **params):
    ### BEGIN SOLUTION
    url = f"{base_url.rstrip('/')}/chat/completions"
    body = {"model": model, "messages": messages, "stream": stream, **params}
    if stream:
        body.setdefault("stream_options", {"include_usage": True})
    try:
        with httpx.stream("POST", url, json=body, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                detail = _error_message(response.text)
                raise EngineError(f"{url} answered HTTP {response.status_code}: {detail}",
                                  status=response.status_code, detail=detail)
            if stream:
                return _streamed_reply(url, sse_payloads(response.iter_lines()))
            response.read()
            return _whole_reply(url, response.text)
    except httpx.HTTPError as exc:
        detail = str(exc) or type(exc).__name__
        raise EngineError(f"talking to {url} failed: {type(exc).__name__}: {detail}", detail=detail) from exc


def _error_message(text):
    """The engine's own words from an error body, whatever its shape."""
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        return text
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(error) if error else text


def _reasoning(part):
    return part.get("reasoning") or part.get("reasoning_content") or ""


def _whole_reply(url, text):
    try:
        data = json.loads(text)
        choice = data["choices"][0]
        message = choice["message"]
        calls = [ToolCall(call.get("id") or "", call["function"]["name"], tool_arguments(call["function"].get("arguments")))
                 for call in message.get("tool_calls") or []]
        return Reply(text=content_text(message.get("content")), reasoning=_reasoning(message), tool_calls=calls,
                     finish_reason=choice.get("finish_reason"), usage=read_usage(data.get("usage")))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise EngineError(f"{url} answered 200 with something that is not a chat completion ({exc!r})",
                          status=200, detail=text[:500]) from None


def _streamed_reply(url, events):
    reply, text, reasoning, fragments = Reply(), [], [], []
    for event in events:
        if event.get("usage"):
            reply.usage = read_usage(event["usage"])
        for choice in event.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text.append(content_text(delta.get("content")))
            reasoning.append(_reasoning(delta))
            fragments.extend(delta.get("tool_calls") or [])
            reply.finish_reason = choice.get("finish_reason") or reply.finish_reason
    if reply.finish_reason is None:
        raise EngineError(f"the stream from {url} ended without a finish_reason: the reply is incomplete",
                          detail=f"no chunk carried a finish_reason; the text so far: {''.join(text)!r}")
    reply.text, reply.reasoning, reply.tool_calls = "".join(text), "".join(reasoning), join_tool_calls(fragments)
    return reply
    ### END SOLUTION


# %% [markdown]
# Try it on a few engines, then on the odd one:

# %%
try:
    print(chat(V1["llamacpp"], MODEL, WEATHER, tools=[WEATHER_TOOL], stream=True))
    print(chat(ODD, MODEL, HELLO))
except NotImplementedError:
    print("chat is not written yet")

# %% nbgrader={"grade": true, "grade_id": "test_chat", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
reply = chat(V1["vllm"], MODEL, WEATHER, tools=[WEATHER_TOOL], stream=True)
assert reply.finish_reason == "tool_calls" and [c.name for c in reply.tool_calls] == ["get_weather"], reply
assert isinstance(reply.tool_calls[0].arguments, dict)
reply = chat(V1["ollama"], MODEL, HELLO)
assert reply.text and reply.finish_reason == "stop" and reply.usage.completion_tokens > 0, reply
### BEGIN HIDDEN TESTS
for profile in PROFILES:
    for messages, extra in ((HELLO, {}), (WEATHER, {"tools": [WEATHER_TOOL]})):
        whole = chat(V1[profile], MODEL, messages, **extra)
        streamed = chat(V1[profile], MODEL, messages, stream=True, **extra)
        raw = httpx.post(f"{V1[profile]}/chat/completions", json={"model": MODEL, "messages": messages, **extra}, timeout=10).json()
        message = raw["choices"][0]["message"]
        assert whole.text == streamed.text == (message["content"] or ""), (profile, whole, streamed)
        assert whole.finish_reason == streamed.finish_reason == raw["choices"][0]["finish_reason"], profile
        assert whole.tool_calls == streamed.tool_calls, (profile, whole.tool_calls, streamed.tool_calls)
        assert [(c.id, c.name, c.arguments) for c in whole.tool_calls] == [
            (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls") or []]
        assert whole.usage == Usage(raw["usage"]["prompt_tokens"], raw["usage"]["completion_tokens"], None), profile
        # Ollama 0.4.7 ignores include_usage: no usage is None, not zeros
        assert streamed.usage == (None if profile == "ollama-legacy" else whole.usage), (profile, streamed.usage)
    thought, thought_streamed = chat(V1[profile], THINKER, HELLO), chat(V1[profile], THINKER, HELLO, stream=True)
    assert thought.reasoning and thought.reasoning == thought_streamed.reasoning, (profile, thought, thought_streamed)
    assert thought.text == thought_streamed.text and thought.reasoning not in thought.text
# the caller's own parameters and stream_options go through untouched
short = chat(V1["vllm"], MODEL, HELLO, max_tokens=3, stream=True, stream_options={"include_usage": False})
assert short.finish_reason == "length" and short.usage is None, short
# the odd engine: parts, an object for arguments, other usage names, comments, a two-line event, no [DONE]
assert chat(ODD, MODEL, HELLO) == chat(ODD, MODEL, HELLO, stream=True) == Reply(
    text="Hello there.", finish_reason="stop", usage=Usage(12, 9, 4))
odd_call = Reply(tool_calls=[ToolCall("call_odd", "get_weather", {"city": "Oslo"})], finish_reason="tool_calls",
                 usage=Usage(12, 9, 4))
assert chat(ODD, MODEL, WEATHER, tools=[WEATHER_TOOL]) == chat(ODD, MODEL, WEATHER, tools=[WEATHER_TOOL], stream=True) == odd_call
### END HIDDEN TESTS

# %% [markdown]
# #### When things go wrong
#
# The next test sends your `chat` a stopped daemon, a host that never answers, a model that does
# not exist, an engine that answers 500, a stream that fails mid-reply on each engine (with an
# error event, or silently), and a connection dropped mid-stream. Try them yourself: `within(3,
# chat, ...)` returns an `Outcome` with the value or the exception.

# %% nbgrader={"grade": true, "grade_id": "test_chat_errors", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
try:
    chat(closed_port() + "/v1", MODEL, HELLO)
except EngineError as error:
    print("stopped daemon:", error)
    assert error.status is None and error.detail
else:
    raise AssertionError("a stopped daemon should raise EngineError")
try:
    chat(V1["ollama"], "lab:http-500", HELLO, stream=True)
except EngineError as error:
    print("HTTP 500:", error)
    assert error.status == 500 and "llama runner process has terminated" in error.detail, vars(error)
else:
    raise AssertionError("HTTP 500 should raise EngineError")
### BEGIN HIDDEN TESTS
def failure(*args, seconds=5.0, **kwargs):
    outcome = within(seconds, chat, *args, **kwargs)
    assert outcome.finished, f"chat{args} did not return within {seconds} s"
    assert isinstance(outcome.error, EngineError), f"chat{args[:2]} {kwargs}: {outcome.error!r} {outcome.value!r}"
    assert isinstance(outcome.error.detail, str) and outcome.error.detail, vars(outcome.error)
    return outcome.error

for stream in (False, True):
    assert failure(closed_port() + "/v1", MODEL, HELLO, stream=stream).status is None
    with black_hole() as host:
        assert failure(host + "/v1", MODEL, HELLO, stream=stream, timeout=0.5, seconds=3.0).status is None
    for profile in PROFILES:
        error = failure(V1[profile], "no-such-model:latest", HELLO, stream=stream)
        assert error.status == 404 and "not found" in error.detail and "{" not in error.detail, (profile, vars(error))
        error = failure(V1[profile], "lab:http-500", HELLO, stream=stream)
        assert error.status == 500 and error.detail == "llama runner process has terminated: exit status 2", vars(error)
    error = failure(V1["vllm"], MODEL, HELLO, stream=stream, temperature=7)
    assert error.status == 400 and "temperature" in error.detail, vars(error)
for profile in PROFILES:
    error = failure(V1[profile], "lab:error-mid-stream", HELLO, stream=True)
    if profile in ("llamacpp", "vllm"):  # they say so in an error event
        assert error.detail == "an error was encountered while running the model" and error.status == 500, vars(error)
    failure(V1[profile], "lab:drop-mid-stream", HELLO, stream=True)
# Ollama's own native error body, and bodies that are not what they claim
weird = FastAPI()

@weird.post("/native/v1/chat/completions")
async def native_error():
    return StreamingResponse(iter(['{"error":"model requires more system memory (9.1 GiB) than is available"}']),
                             status_code=500, media_type="application/json")

@weird.post("/html/v1/chat/completions")
async def html_error():
    return StreamingResponse(iter(["<html><body>502 Bad Gateway</body></html>"]), status_code=502, media_type="text/html")

@weird.post("/empty/v1/chat/completions")
async def empty_ok(body: dict):
    return StreamingResponse(iter(["<html>hello</html>" if not body.get("stream") else 'data: {"choices": []}\n\ndata: [DONE]\n\n']),
                             media_type="text/html")

with serve_app(weird) as served:
    error = failure(served.url + "/native/v1", MODEL, HELLO)
    assert error.status == 500 and error.detail == "model requires more system memory (9.1 GiB) than is available", vars(error)
    error = failure(served.url + "/html/v1", MODEL, HELLO, stream=True)
    assert error.status == 502 and "502 Bad Gateway" in error.detail, vars(error)
    error = failure(served.url + "/empty/v1", MODEL, HELLO)
    assert error.status == 200 and "<html>hello</html>" in error.detail, vars(error)
    failure(served.url + "/empty/v1", MODEL, HELLO, stream=True)  # [DONE] but never a finish_reason
### END HIDDEN TESTS

# %% [markdown]
# ## What each engine's stream is made of
#
# With `sse_payloads` in hand, count what each engine spends its chunks on for the same two
# replies, a text answer and a tool call. A chunk is sorted by what it carries first: text,
# reasoning, a tool-call fragment, only a role, only a finish reason, only usage.

# %%
import pandas as pd

KINDS = ("role only", "text", "tool-call fragment", "finish only", "usage only", "empty")


def kind_of(event):
    choices = event.get("choices") or []
    delta = (choices[0].get("delta") or {}) if choices else {}
    if content_text(delta.get("content")):
        return "text"
    if delta.get("tool_calls"):
        return "tool-call fragment"
    if choices and choices[0].get("finish_reason"):
        return "finish only"
    if delta.get("role"):
        return "role only"
    return "usage only" if event.get("usage") else "empty"


def stream_kinds(base_url, **body):
    body = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True}, **body}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=10) as response:
        return pd.Series([kind_of(e) for e in sse_payloads(response.iter_lines())]).value_counts()


replies = {"text answer (8 tokens)": {"messages": [{"role": "user", "content": "Write 8 words."}]},
           "tool call": {"messages": WEATHER, "tools": [WEATHER_TOOL]}}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, (title, body) in zip(axes, replies.items()):
    table = pd.DataFrame({profile: stream_kinds(V1[profile], **body) for profile in PROFILES}).T
    table = table.reindex(columns=KINDS).fillna(0)
    table.plot.barh(stacked=True, ax=ax, width=0.7, colormap="tab10", legend=False)
    ax.set_title(title)
    ax.set_xlabel("SSE events (before [DONE])")
    ax.invert_yaxis()
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(KINDS), frameon=False)
fig.suptitle("What each engine's chunks carry, for the same reply")
fig.tight_layout(rect=(0, 0.08, 1, 1))
plt.show()

# %% [markdown]
# The same reply costs a different number of events on each engine, and the events carry
# different things: llama-server opens with a role-only chunk whose `content` is `null`, Ollama
# 0.4.7 has no usage chunk and puts the finish reason on a content chunk, llama-server and vLLM
# split the call's arguments into fragments. A client that assumes one layout (the first chunk
# has text, the last chunk has usage, a call comes whole) works on one engine and fails on the
# next. Yours reads the protocol, not the layout.
#
# ## What you built
#
# A client of about a hundred lines that takes replies in any of the shapes real engines send,
# decodes and checks tool arguments, finds token counts under any name, reads SSE as the spec
# says (comments, multi-line events, a missing `[DONE]`, error events), joins streamed tool
# calls, refuses to pass off a cut-short stream as a reply, and reports every failure as one
# error with the engine's own words in it. The next lesson turns the question around: instead
# of tolerating engines, you check them against the spec.
