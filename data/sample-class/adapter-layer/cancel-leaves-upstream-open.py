# OllamaAdapter reads the response in a task of its own that pumps the lines into a queue, and
# the generator yields from the queue. When the consumer stops early, or its task is cancelled,
# the generator ends but the pump goes on reading the whole reply: nothing cancels it, so the
# upstream stream stays open and the engine keeps generating for nobody.

# %% ollama_adapter
_PUMPS = set()  # running pump tasks (asyncio keeps only a weak reference to a task)


class OllamaAdapter(AsyncAdapter):
    """Ollama's native chat API (/api/chat, NDJSON) behind the layer."""

    async def stream(self, messages, tools=None, *, timeout=None, **opts):
        url = f"{self.base_url}/api/chat"
        where = {"url": url, "model": self.model}
        body = {"model": self.model, "messages": messages, "stream": True, "options": opts}
        if tools:
            body["tools"] = tools
        start, text_times, queue = time.perf_counter(), [], asyncio.Queue()

        async def pump():  # reads the whole reply into the queue, whoever is listening
            try:
                async with self.client.stream("POST", url, json=body, timeout=self.timeouts(timeout)) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        await queue.put(OllamaServerError(error_message(response.text), status=response.status_code, **where))
                        return
                    async for line in response.aiter_lines():
                        await queue.put(line)
                await queue.put(None)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                await queue.put(OllamaUnavailable(f"cannot connect: {exc!r}", **where))
            except httpx.ReadTimeout:
                await queue.put(ModelLoadingTimeout("no data within the read timeout", **where))
            except httpx.TransportError as exc:
                await queue.put(OllamaProtocolError(f"the connection broke: {exc!r}", **where))

        task = asyncio.create_task(pump())
        _PUMPS.add(task)
        task.add_done_callback(_PUMPS.discard)
        while (line := await queue.get()) is not None:
            if isinstance(line, Exception):
                raise line
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
            yield chunk
        raise OllamaProtocolError("the stream ended before its done frame", **where)


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
