# OllamaAdapter opens a new httpx.AsyncClient for every request instead of using the shared
# client it was given: every stream pays for a new connection pool, and nothing the application
# configured on its client (limits, hooks, headers) applies.

# %% ollama_adapter
class OllamaAdapter(AsyncAdapter):
    """Ollama's native chat API (/api/chat, NDJSON) behind the layer."""

    async def stream(self, messages, tools=None, *, timeout=None, **opts):
        url = f"{self.base_url}/api/chat"
        where = {"url": url, "model": self.model}
        body = {"model": self.model, "messages": messages, "stream": True, "options": opts}
        if tools:
            body["tools"] = tools
        start, text_times, received = time.perf_counter(), [], 0
        try:
            async with httpx.AsyncClient(timeout=self.timeouts(timeout)) as client, \
                    client.stream("POST", url, json=body) as response:  # a new connection pool per request
                if response.status_code >= 400:
                    await response.aread()
                    raise OllamaServerError(error_message(response.text), status=response.status_code, **where)
                async for line in response.aiter_lines():
                    frame = _native_frame(line, where)
                    message = frame.get("message") or {}
                    chunk = StreamChunk(
                        content=message.get("content") or "",
                        thinking=message.get("thinking") or "",
                        tool_calls=[{"id": call.get("id") or "", "name": call["function"]["name"],
                                     "arguments": call["function"].get("arguments") or {}}
                                    for call in message.get("tool_calls") or []])
                    if chunk.content or chunk.thinking:
                        text_times.append(time.perf_counter())
                    if frame.get("done"):
                        eval_count, eval_duration = frame.get("eval_count"), frame.get("eval_duration")
                        chunk.done, chunk.done_reason = True, frame.get("done_reason")
                        chunk.prompt_tokens, chunk.completion_tokens = frame.get("prompt_eval_count"), eval_count
                        if eval_count is not None and eval_duration:
                            chunk.tokens_per_sec = eval_count / eval_duration * 1e9
                        chunk.first_token_sec, chunk.client_tokens_per_sec = speeds(start, text_times)
                        yield chunk
                        return
                    received += 1
                    yield chunk
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise OllamaUnavailable(f"cannot connect: {exc!r}", **where) from exc
        except httpx.ReadTimeout as exc:
            raise ModelLoadingTimeout("no data within the read timeout", chunks=received, **where) from exc
        except httpx.TransportError as exc:
            raise OllamaProtocolError(f"the connection broke: {exc!r}", chunks=received, **where) from exc
        raise OllamaProtocolError("the stream ended before its done frame", chunks=received, **where)


def _native_frame(line, where):
    """One NDJSON line as a frame, or the error it stands for (Lesson 4's parse_line)."""
    try:
        frame = json.loads(line)
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        raise OllamaProtocolError("an NDJSON line that is not a JSON object", line=line, **where)
    if "error" in frame:
        raise OllamaServerError(str(frame["error"]), **where)
    return frame
