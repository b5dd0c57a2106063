# OpenAICompatAdapter takes every tool-call fragment for a whole call: fine on Ollama, which
# sends a call in one delta, but llama-server and vLLM send the name first and the arguments
# in pieces keyed by index, and the pieces are not JSON on their own.

# %% openai_adapter
class OpenAICompatAdapter(AsyncAdapter):
    """Any OpenAI-compatible /v1 engine (Ollama's /v1, llama-server, vLLM) behind the layer."""

    async def stream(self, messages, tools=None, *, timeout=None, **opts):
        url = f"{self.base_url}/chat/completions"
        where = {"url": url, "model": self.model}
        body = {"model": self.model, "messages": messages, "stream": True,
                "stream_options": {"include_usage": True}, **opts}
        if tools:
            body["tools"] = tools
        start, text_times, received = time.perf_counter(), [], 0
        calls, finish, usage, timings = {}, None, None, None
        try:
            async with self.client.stream("POST", url, json=body, timeout=self.timeouts(timeout)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise OllamaServerError(error_message(response.text), status=response.status_code, **where)
                async for data in sse_data(response.aiter_lines()):
                    event = _sse_event(data, where)
                    usage = event.get("usage") or usage
                    timings = event.get("timings") or timings
                    for choice in event.get("choices") or []:
                        delta = choice.get("delta") or {}
                        for fragment in delta.get("tool_calls") or []:
                            _merge_call(calls, fragment)
                        finish = choice.get("finish_reason") or finish
                        chunk = StreamChunk(content=delta.get("content") or "",
                                            thinking=delta.get("reasoning") or delta.get("reasoning_content") or "")
                        if chunk.content or chunk.thinking:
                            text_times.append(time.perf_counter())
                            received += 1
                            yield chunk
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise OllamaUnavailable(f"cannot connect: {exc!r}", **where) from exc
        except httpx.ReadTimeout as exc:
            raise ModelLoadingTimeout("no data within the read timeout", chunks=received, **where) from exc
        except httpx.TransportError as exc:
            raise OllamaProtocolError(f"the connection broke: {exc!r}", chunks=received, **where) from exc
        if finish is None:
            raise OllamaProtocolError("the stream ended without a finish_reason: the reply is incomplete",
                                      chunks=received, **where)
        done = StreamChunk(done=True, done_reason=finish, tool_calls=[_whole_call(calls[i], where) for i in sorted(calls)])
        if usage:
            done.prompt_tokens, done.completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if timings and timings.get("predicted_per_second"):
            done.tokens_per_sec = float(timings["predicted_per_second"])
        done.first_token_sec, done.client_tokens_per_sec = speeds(start, text_times)
        yield done


def _sse_event(data, where):
    try:
        event = json.loads(data)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise OllamaProtocolError("an SSE event that is not a JSON object", line=data, **where)
    error = event.get("error")
    if error:
        raise OllamaServerError(str(error.get("message") or error) if isinstance(error, dict) else str(error), **where)
    return event


def _merge_call(calls, fragment):
    function = fragment.get("function") or {}  # every fragment taken for a whole call
    calls[len(calls)] = {"id": fragment.get("id") or "", "name": function.get("name") or "",
                         "arguments": function.get("arguments") or ""}


def _whole_call(call, where):
    arguments = call["arguments"]
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            arguments = None
    if not isinstance(arguments, dict):
        raise OllamaProtocolError("tool-call arguments that are not a JSON object", line=str(call["arguments"]), **where)
    return {"id": call["id"], "name": call["name"], "arguments": arguments}
