# %% ChunkTranslator
# Ollama 0.4.7's /v1 shape: every frame copied into a delta with the role, the done frame too,
# so the finish reason rides on {"role": "assistant", "content": ""} instead of an empty delta
# {} (toChunk in openai/openai.go, v0.4.7). The SDK copes; the spec does not say so.
class ChunkTranslator:
    def __init__(self, model, include_usage=False):
        self.model, self.include_usage = model, include_usage
        self.id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        self.created = int(time.time())
        self.role_sent = False
        self.tool_calls = 0

    def chunk(self, delta, finish_reason=None):
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    def translate(self, frame):
        message = frame.get("message") or {}
        delta = {"role": "assistant", "content": message.get("content", "")}
        if message.get("thinking"):
            delta["reasoning"] = message["thinking"]
        for call in message.get("tool_calls") or []:
            delta.setdefault("tool_calls", []).append({
                "index": self.tool_calls, "id": call.get("id") or "call_0", "type": "function",
                "function": {"name": call["function"]["name"], "arguments": json.dumps(call["function"]["arguments"])}})
            self.tool_calls += 1
        if not frame.get("done"):
            return [self.chunk(delta)] if len(delta) > 2 or delta["content"] else []
        reason = frame.get("done_reason") or "stop"
        if reason == "stop" and self.tool_calls:
            reason = "tool_calls"
        chunks = [self.chunk(delta, reason)]
        if self.include_usage:
            prompt, generated = frame.get("prompt_eval_count", 0), frame.get("eval_count", 0)
            chunks.append({**self.chunk({}), "choices": [],
                           "usage": {"prompt_tokens": prompt, "completion_tokens": generated,
                                     "total_tokens": prompt + generated}})
        return chunks
