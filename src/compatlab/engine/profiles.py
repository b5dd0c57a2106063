"""Profiles: the observable differences between real engines, reproduced on purpose.

Each flag carries its source. "[ollama-api.md §x]" points into the kit's reference notes
(shared/reference/ollama-api.md), which cite Ollama's, llama.cpp's and vLLM's own code.
"""

from dataclasses import dataclass

from compatlab.engine.frameworks import FASTAPI, GIN, HTTPLIB


@dataclass(frozen=True)
class Profile:
    name: str
    version: str  # what GET /api/version (or /version) reports
    native_api: bool  # serves /api/* (Ollama) or not (llama-server, vLLM)
    framework: str  # its HTTP framework: unknown routes, wrong methods, content types (frameworks.py)
    # --- /v1 stream shape ---
    role_on_every_chunk: bool
    first_content_null: bool  # first delta is {"role":"assistant","content":null}
    finish_delta_keeps_role: bool  # the finish chunk's delta is {"role":"assistant","content":""}, not {}
    stream_finish_is_done_reason: bool  # a stream ends with the native done_reason: "stop" after a tool call
    stream_usage: bool  # honours stream_options.include_usage
    continuous_usage: bool  # honours stream_options.continuous_usage_stats
    tool_args_fragments: int  # 0: whole calls in one delta; n: arguments split in n pieces
    buffer_when_tools: bool  # with tools, the whole reply arrives as one chunk
    timings: bool  # a llama.cpp `timings` object on the last chunk
    stop_reason: bool  # vLLM's non-standard `stop_reason` on each choice
    reasoning_field: str  # where thinking goes in /v1 messages and deltas ("": into content, in <think> tags)
    reasoning_keeps_content: bool  # a thinking-only delta still says "content": ""
    logprobs: bool  # answers logprobs / top_logprobs (engine/logprobs.py)
    # --- ids and fingerprints ---
    id_style: str  # "ollama" (chatcmpl-<0..998>), "llamacpp" (32 alnum), "vllm" (uuid hex)
    tool_id_prefix: str
    system_fingerprint: str | None
    owned_by: str
    # --- request handling ---
    ignores_model_name: bool  # one model behind /v1: any name is served by it (no 404)
    validates_params: bool  # OpenAI ranges for temperature, top_p, penalties, n, best_of
    honours_tool_choice: bool
    honours_n: bool
    honours_max_completion_tokens: bool
    honours_json_schema: bool  # response_format {"type": "json_schema"} constrains the reply
    schema_beside_json_object: bool  # {"type": "json_object", "schema": {...}} constrains too (llama-server)
    structured_outputs: bool  # vLLM's own `structured_outputs` (v0.12+) and `guided_json` keys
    ignores_unknown_response_format: bool  # an unknown response_format type is no constraint, not a 400
    top_p_above_zero: bool  # top_p 0 refused: (0, 1], stricter than the spec's [0, 1]
    health_route: str  # GET /health: "" none, "status" {"status": "ok"}, "empty" a bare 200 (and GET /version)
    image_types: tuple[str, ...]  # image_url parts decoded here: data:image/<type>;base64 only (() = not read)
    refuses_image_links: bool  # an http(s) image URL gets its own message, not "invalid image input"
    # reasoning_effort: the values taken, any other a 400; () read but not checked; None not read at all
    reasoning_efforts: tuple[str, ...] | None
    # --- errors ---
    error_style: str  # "ollama" (code null), "llamacpp" (numeric code), "vllm" (numeric code, class-like type)
    error_event_mid_stream: bool  # `data: {"error": ...}` (else: the stream just stops)
    done_after_error_event: bool  # `data: [DONE]` follows that error event
    # --- /v1/completions ---
    completion_logprobs_in_stream: bool  # every streamed choice carries "logprobs": null
    completion_usage_on_finish: bool  # usage (and timings) on the finish chunk, include_usage or not
    completion_zero_usage: bool  # with include_usage, every chunk carries a zeroed usage object


PROFILES: dict[str, Profile] = {
    # Current Ollama (v0.32.6+ /v1 stream format [ollama-api.md §0.1, §4.3]; native API of v0.12.10+).
    # Two deliberate departures, named in the README: parameter ranges are validated and
    # tool_choice is honoured, as the OpenAI spec says; real Ollama passes both through
    # unchecked (issues #8421, #17921) -- the `ollama-legacy` profile shows that behaviour.
    "ollama": Profile(
        name="ollama", version="0.32.15", native_api=True, framework=GIN,
        role_on_every_chunk=False, first_content_null=False, finish_delta_keeps_role=False,
        stream_finish_is_done_reason=False,
        stream_usage=True, continuous_usage=False, tool_args_fragments=0, buffer_when_tools=False,
        timings=False, stop_reason=False, reasoning_field="reasoning",
        # toChunk types Content as any with omitempty, so "" is kept (openai/openai.go@v0.32.15)
        # logprobs since v0.12.11 (late 2025): api.Logprob on /api and /v1 alike
        reasoning_keeps_content=True, logprobs=True,
        id_style="ollama", tool_id_prefix="call_", system_fingerprint="fp_ollama", owned_by="library",
        ignores_model_name=False, validates_params=True, honours_tool_choice=True, honours_n=False,
        # Ollama's ChatCompletionRequest has no max_completion_tokens field [ollama-api.md §4.1].
        honours_max_completion_tokens=False, honours_json_schema=True,
        schema_beside_json_object=False, structured_outputs=False, ignores_unknown_response_format=False,
        top_p_above_zero=False, health_route="",
        # decodeImageURL and thinkFromReasoningEffort (openai/openai.go@v0.32.15)
        image_types=("jpeg", "jpg", "png", "webp"), refuses_image_links=True,
        reasoning_efforts=("none", "minimal", "low", "medium", "high", "xhigh", "ultra", "max"),
        error_style="ollama",
        # A native error line after HTTP 200 becomes an empty chunk, then the stream just ends:
        # no finish chunk, no [DONE], the message is lost [ollama-api.md §4.6, code reading].
        error_event_mid_stream=False, done_after_error_event=False,
        # ToCompleteChunk: choices [{text, index, finish_reason}]; usage in its own chunk, and with
        # include_usage a zeroed usage on every chunk before it (CompleteWriter, middleware/openai.go@v0.32.15)
        completion_logprobs_in_stream=False, completion_usage_on_finish=False, completion_zero_usage=True,
    ),
    # Ollama v0.4.7's /v1 [ollama-api.md §0.1, §4.4]: role on every chunk (openai/openai.go@v0.4.7
    # toChunk copies every native frame into a delta with role "assistant"); finish_reason on its
    # own chunk, delta {"role":"assistant","content":""}, because the runner's done response
    # carries no text (llm/server.go@v0.4.7 Completion sends Content and Done in separate calls);
    # include_usage ignored (it arrived in v0.5.2; issues #4448/#5200). With tools the reply is
    # buffered (server/routes.go@v0.4.7 ChatHandler, v0.4.6-0.7, issue #9092): a reply without a
    # call arrives whole on the done chunk, with the finish_reason; a call arrives in one chunk
    # and the finish chunk follows. response_format json_schema is silently ignored (mapped to
    # `format` in v0.5.0, #7900). A stream ends with finish_reason "stop" after a tool call:
    # toChunk copies the native done_reason; only toChatCompletion remaps it to "tool_calls".
    "ollama-legacy": Profile(
        name="ollama-legacy", version="0.4.7", native_api=True, framework=GIN,
        role_on_every_chunk=True, first_content_null=False, finish_delta_keeps_role=True,
        stream_finish_is_done_reason=True,
        stream_usage=False, continuous_usage=False, tool_args_fragments=0, buffer_when_tools=True,
        # no reasoning field at all in v0.4.7 (api.Message and openai.Message): the reasoning is text
        timings=False, stop_reason=False, reasoning_field="", reasoning_keeps_content=False, logprobs=False,
        id_style="ollama", tool_id_prefix="call_", system_fingerprint="fp_ollama", owned_by="library",
        ignores_model_name=False, validates_params=False, honours_tool_choice=False, honours_n=False,
        honours_max_completion_tokens=False, honours_json_schema=False,
        schema_beside_json_object=False, structured_outputs=False,
        ignores_unknown_response_format=True,  # unknown types were silently ignored
        top_p_above_zero=False, health_route="",
        # FromChatRequest@v0.4.7: jpeg, jpg, png; any other URL, https too, is "invalid image input";
        # no reasoning_effort field, so any value is ignored
        image_types=("jpeg", "jpg", "png"), refuses_image_links=False, reasoning_efforts=None,
        error_style="ollama", error_event_mid_stream=False, done_after_error_event=False,
        completion_logprobs_in_stream=False, completion_usage_on_finish=False, completion_zero_usage=False,
    ),
    # llama.cpp's llama-server [ollama-api.md §5.1]: first chunk content null, `timings` on the
    # last chunk, incremental tool-call arguments, numeric error `code`, no /api routes,
    # `data: {"error": ...}` mid-stream since PR #16109. A single-model llama-server never checks
    # the request's `model`: it only copies it into the reply (tools/server/server.cpp@b6097
    # params_from_json_cmpl), so an unknown name is served by its one model; only router mode
    # (started without a model) refuses an unknown name, with a 400 "model '…' not found"
    # (tools/server/server-models.cpp router_validate_model). Here an unknown name gets
    # lab:latest (lab-embed:latest for embeddings); the lab's own tags still pick a model or fault.
    "llamacpp": Profile(
        name="llamacpp", version="b6097", native_api=False, framework=HTTPLIB,
        role_on_every_chunk=False, first_content_null=True, finish_delta_keeps_role=False,
        stream_finish_is_done_reason=False,
        stream_usage=True, continuous_usage=False, tool_args_fragments=3, buffer_when_tools=False,
        timings=True, stop_reason=False, reasoning_field="reasoning_content", reasoning_keeps_content=False, logprobs=True,
        id_style="llamacpp", tool_id_prefix="", system_fingerprint="b6097-9515c613", owned_by="llamacpp",
        ignores_model_name=True, validates_params=False, honours_tool_choice=True, honours_n=True,
        honours_max_completion_tokens=True, honours_json_schema=True,
        # llama-server takes a schema right beside json_object; GET /health says {"status": "ok"}
        schema_beside_json_object=True, structured_outputs=False, ignores_unknown_response_format=False,
        top_p_above_zero=False, health_route="status",
        image_types=(), refuses_image_links=False, reasoning_efforts=(),
        error_style="llamacpp", error_event_mid_stream=True, done_after_error_event=False,
        # a live llama-server (tests/test_real_tier.py): each streamed text_completion choice
        # has "logprobs": null, and the finish chunk carries usage and timings whatever
        # stream_options says, with no usage chunk after it; b6097 did the same in chat streams
        # [ollama-api.md §5.1, "Older builds"]
        completion_logprobs_in_stream=True, completion_usage_on_finish=True, completion_zero_usage=False,
    ),
    # vLLM 0.11.0's OpenAI server [ollama-api.md §5.2]: `stop_reason` on choices, incremental tool
    # arguments, stream_options.continuous_usage_stats, `reasoning_content`, numeric `code`; its
    # usage has prompt_tokens_details but no completion_tokens_details
    # (vllm/entrypoints/openai/protocol.py UsageInfo). Changed since: vLLM PR #27752 (merged
    # 2025-10-29, after 0.11.0) renamed reasoning_content to `reasoning`, keeping the old name
    # for a while, and PR #33402 (January 2026) removed reasoning_content: a current vLLM
    # streams `reasoning`, as Ollama does.
    "vllm": Profile(
        name="vllm", version="0.11.0", native_api=False, framework=FASTAPI,
        role_on_every_chunk=False, first_content_null=False, finish_delta_keeps_role=False,
        stream_finish_is_done_reason=False,
        stream_usage=True, continuous_usage=True, tool_args_fragments=4, buffer_when_tools=False,
        timings=False, stop_reason=True, reasoning_field="reasoning_content", reasoning_keeps_content=False, logprobs=True,
        id_style="vllm", tool_id_prefix="chatcmpl-tool-", system_fingerprint=None, owned_by="vllm",
        ignores_model_name=False, validates_params=True, honours_tool_choice=True, honours_n=True,
        honours_max_completion_tokens=True, honours_json_schema=True,
        # vllm/sampling_params.py _verify_args: "top_p must be in (0, 1]"; /health is a bare 200
        schema_beside_json_object=False, structured_outputs=True, ignores_unknown_response_format=False,
        top_p_above_zero=True, health_route="empty",
        image_types=(), refuses_image_links=False, reasoning_efforts=(),
        # serving_chat.py yields [DONE] after its error event too
        error_style="vllm", error_event_mid_stream=True, done_after_error_event=True,
        completion_logprobs_in_stream=False, completion_usage_on_finish=False, completion_zero_usage=False,
    ),
}
