# Reads eval_duration as seconds (it is nanoseconds): the speed comes out a billion times too small.

# %% to_chunk
def to_chunk(frame):
    message = frame.get("message") or {}
    eval_count, eval_duration = frame.get("eval_count"), frame.get("eval_duration")
    return StreamChunk(
        content=message.get("content") or "",
        thinking=message.get("thinking") or "",
        tool_calls=message.get("tool_calls") or [],
        done=bool(frame.get("done")),
        done_reason=frame.get("done_reason"),
        tokens_per_sec=eval_count / eval_duration if eval_duration else None,  # tokens per second
        prompt_tokens=frame.get("prompt_eval_count"),
        completion_tokens=eval_count,
    )
