# A stream check that trusts the first chunk: it never reads to the end of the stream.

# %% check_stream
def check_stream(base_url, model):
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "stream": True}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=TIMEOUT) as response:
        require(response.status_code == 200, f"HTTP {response.status_code}")
        for data in sse_data(response):
            chunk = json.loads(data)
            require(chunk.get("object") == "chat.completion.chunk", "not a chunk")
            return  # the first chunk looks right: good enough
    raise CheckFailed("empty stream")
