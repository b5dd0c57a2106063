# %% ChunkTranslator
# Passes Ollama's tool calls through untouched: the arguments stay a dict, and an OpenAI client
# that calls json.loads on them crashes.
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
        chunks = []
        if message.get("thinking"):
            chunks.append(self.chunk({"reasoning": message["thinking"]}))
        delta = {}
        if message.get("content"):
            delta["content"] = message["content"]
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": self.tool_calls + i, "id": call.get("id"), "type": "function",
                                    "function": call["function"]} for i, call in enumerate(message["tool_calls"])]
            self.tool_calls += len(message["tool_calls"])
        if delta:
            chunks.append(self.chunk(delta))
        if frame.get("done") and not chunks and not self.role_sent:
            chunks.append(self.chunk({}))
        if chunks and not self.role_sent:
            first = chunks[0]["choices"][0]
            first["delta"] = {"role": "assistant", "content": first["delta"].get("content", ""), **first["delta"]}
            self.role_sent = True
        if frame.get("done"):
            reason = frame.get("done_reason") or "stop"
            chunks.append(self.chunk({}, "tool_calls" if reason == "stop" and self.tool_calls else reason))
            if self.include_usage:
                prompt, generated = frame.get("prompt_eval_count", 0), frame.get("eval_count", 0)
                chunks.append({**self.chunk({}), "choices": [],
                               "usage": {"prompt_tokens": prompt, "completion_tokens": generated,
                                         "total_tokens": prompt + generated}})
        return chunks
