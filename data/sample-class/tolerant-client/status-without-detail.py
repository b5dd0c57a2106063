# HTTP errors go through httpx's raise_for_status(), caught with every other httpx error: the
# caller gets httpx's "Server error '500 …' for url …", no status and not the engine's words.

# %% chat
def chat(base_url, model, messages, *, stream=False, timeout=10.0, api_key=None, **params):
    url = f"{base_url.rstrip('/')}/chat/completions"
    body = {"model": model, "messages": messages, "stream": stream, **params}
    if stream:
        body.setdefault("stream_options", {"include_usage": True})
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.stream("POST", url, json=body, headers=headers, timeout=timeout) as response:
            response.raise_for_status()
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
