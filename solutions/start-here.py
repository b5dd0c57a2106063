# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Start here
#
# This course teaches how local LLM engines (Ollama, llama.cpp's llama-server, vLLM) are, and
# are not, "OpenAI-compatible", by having you build the tools that find out: a compatibility
# harness, an NDJSON→SSE proxy, an adapter, a tolerant client and a spec-compliance checker;
# the last lesson puts them together into one async adapter layer over every engine.
# Every lesson is one notebook with exercises; each exercise is followed by tests that check
# your answer. This notebook is not graded: it is the map, how to check your work, and a
# glossary to come back to.
#
# You need: {needs}.

# %% [markdown]
# ## The course map
#
# Take the lessons in this order; each lists the lessons it builds on. Times are for a learner
# who reads everything and does every exercise. Click a title to open the lesson.
#
# <!-- the course map: `compatlab release` writes it here from solutions/course.toml -->

# %% [markdown]
# ## Where your work lives
#
# `make lab` (or `compatlab lab`) opens JupyterLab on your **work folder**, `work/`, not on the
# course's release in `lessons/`. The first time, it copies every lesson into `work/`; after
# that it never overwrites a file there. When the course is updated and a lesson you already
# have changes, the terminal says so and the new version is put beside yours, as
# `<lesson>.release-<date>.ipynb` in the same folder: open both and carry your answers over
# when you are ready. Your own notebook stays as you left it.

# %% [markdown]
# ## How to check your work
#
# - **Run the test cell under each exercise.** It runs the *visible* tests: a few checks, at
#   least one of them a case that a half-done answer fails. A pass prints a line starting
#   with ✓; a failure says which behaviour was checked, what was expected and what your code
#   did. An exercise you have not answered yet raises `NotImplementedError` with the words
#   "this exercise is not answered yet": Run All stops there, so answer it (or run the cells
#   below it one by one).
# - **Run `check()` at the end of a lesson.** It runs the *hidden* tests too, the ones your
#   grade comes from, on your notebook as it is saved, in the same sandbox the grader uses,
#   and shows a table: each test's verdict, its points and its message, without showing the
#   test code. When a failure matches a mistake learners often make, it names the mistake and
#   the hint to read. (An instructor can turn the hidden tests off for a course; `check()`
#   then runs the visible tests only and says so.)
# - **From a terminal**, the same check: `compatlab check work/<lesson>/<lesson>.ipynb`.
# - **Validate** (the button in the notebook's toolbar, from nbgrader) runs the whole notebook
#   and reports cells that fail; it runs the visible tests only.
#
# Every exercise has hints under its instructions, from gentle to specific: open them one at
# a time.
#
# Some cells you cannot edit: the setup, the tests, and the **demonstrations**, which show,
# time and plot what you built (a concurrency table, a timing plot). Run them; to try other
# settings, copy one into a new cell and change the copy. Demonstrations grade nothing, so the
# grader and `check()` leave them out: your notebook has already shown you what they show.

# %% [markdown]
# ## Engines: what your notebooks talk to
#
# Each lesson's setup cell starts its own **lab engines** in your kernel (about a second), so
# every exercise works without a GPU or a download. `make lab` also sets `OLLAMA_HOST` and
# `OPENAI_BASE_URL` for your kernels: a real Ollama at `OLLAMA_HOST` is used when one answers,
# and the optional real tier (`make real`: SmolLM2-135M on llama.cpp's llama-server) joins the
# demos when installed. `compatlab doctor` in a terminal says which engines answer.

# %% [markdown]
# ## Glossary
#
# The words the lessons use, in the sense they use them.
#
# | term | meaning |
# |---|---|
# | **native API** | Ollama's own HTTP API: `/api/chat`, `/api/generate`, `/api/tags`, …; it streams NDJSON. |
# | **`/v1`**, OpenAI-compatible API | the routes that copy OpenAI's (`/v1/chat/completions`, `/v1/models`, …); they stream SSE. llama-server and vLLM speak this family (and a few routes of their own); Ollama speaks both. |
# | **base URL** | the root a client puts paths after: `http://127.0.0.1:11434/v1` for the `openai` SDK, `http://127.0.0.1:11434` for Ollama's native API. |
# | **`name:tag`** | how Ollama names a model: `lab:latest`, `smollm2:135m`. The lab engine's faults are tags (`lab:drop-mid-stream`). |
# | **NDJSON** | newline-delimited JSON: one complete JSON object per line, no blank lines, no end marker. Ollama's native streams are NDJSON. |
# | **frame** | one object of an NDJSON stream. |
# | **done frame** | the last frame of a native stream: `"done": true`, `done_reason`, the token counts and durations (in nanoseconds). A stream that stops without one is incomplete, even when its connection closed cleanly. |
# | **SSE** | Server-Sent Events, a format from the HTML standard: `data:` lines, an empty line ends an event, several `data:` lines in one event join with newlines, a line starting with `:` is a comment (servers send them as keep-alives). `/v1` streams are SSE. |
# | **`[DONE]`** | the event `data: [DONE]`: OpenAI's convention for "the stream is over", not part of SSE. Nothing after it belongs to the reply. |
# | **chunk** | one `chat.completion.chunk` object in a `/v1` stream: one SSE event's data. Its choices carry deltas. |
# | **delta** | what a chunk adds to the reply: `choices[0].delta`, with a piece of `content`, the `role`, tool-call fragments or reasoning. Its fields come and go by engine and by chunk: `content` may be missing or `null`. |
# | **finish chunk** | the chunk whose choice carries a `finish_reason` (`stop`, `length`, `tool_calls`); most engines send it as a chunk of its own, with a delta that has no text (`{}` on current Ollama), so code that reads `delta["content"]` must expect it missing. |
# | **usage chunk** | when a request sets `stream_options: {"include_usage": true}`, a chunk before `[DONE]` with no choices and the token counts in `usage`. |
# | **TTFT** | time to first token: from sending the request to the first piece of *text*. Chunks without text (a role-only opener, a finish chunk) do not count. |
# | **inter-chunk gap** | the time between two consecutive pieces of text in a stream. |
# | **tokens per second** (while streaming) | `(n − 1) / (last text arrival − first text arrival)`: decoding speed, without the wait before the first token. |
# | **tool call** | the model asking your code to run a function: a name and arguments. In `/v1` the arguments are a JSON *string*; in Ollama's native API, an object. |
# | **structured output** | a reply constrained to JSON, or to a JSON Schema: `format` natively, `response_format` in `/v1`. |
# | **error envelope** | the shape of an error body: OpenAI's is `{"error": {"message", "type", "param", "code"}}`; Ollama's native API answers `{"error": "…"}`; engines differ in the details. |
# | **lab engine** | the kit's own small server (`compatlab engine serve`): it speaks Ollama's native API and `/v1`, gives the same reply to the same request on every machine (its replies are deterministic filler, not a language model), and misbehaves on purpose when asked to. |
# | **profile** | which real engine's observable differences a lab engine reproduces: `ollama`, `ollama-legacy` (Ollama 0.4.7), `llamacpp` (llama-server), `vllm`. |
# | **fault** | a misbehaviour the lab engine shows on purpose, chosen by model tag: a line cut short, an error mid-stream, a dropped connection, an HTTP 500, … |
# | **quirk** | in the spec-compliance lesson, one of the simulator's known bugs, switched back on by name (`simulator("naive-json-schema")`) to see whether your checker notices. Elsewhere, loosely: a way one engine departs from what the others (or the spec) do. |
# | **shim** | a small piece of code, specific to one engine, that turns what it does into what the client expects: the compat-harness lesson's `tool_call_shim` makes a model that writes tool calls as plain text PASS the tool check. |
# | **harness** | the compat-harness lesson's set of checks run against every engine, giving a PASS/FAIL matrix. |
# | **real tier** | the optional real engine (`make real`): SmolLM2-135M on llama.cpp's llama-server, with Ollama's API in front of it. |
# | **visible / hidden tests** | the tests you see under each exercise, and the ones removed from your copy that your grade also comes from; `check()` runs both without showing the hidden ones. |
