# A usage check that reads a missing usage object as zeros, and skips the stream.

# %% check_usage
def check_usage(base_url, model):
    reply = post_chat(base_url, {"model": model, "messages": [{"role": "user", "content": "Say hello."}]})
    usage = reply.get("usage") or {}
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    require(usage.get("total_tokens", 0) == prompt + completion, "total is not the sum")
