# An event is handed out only when a blank line follows it: a body that ends right after its
# last `data:` line (no blank line, no [DONE]) loses that event, here the finish chunk.

# %% sse_payloads
def sse_payloads(lines):
    data = []
    for line in lines:
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
