# A stream check that counts `data:` lines: any stream with a few events passes, finished or not.

# %% check_stream
def check_stream(base_url, model):
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "stream": True}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=TIMEOUT) as response:
        events = [line for line in response.iter_lines() if line.startswith("data:")]
    require(len(events) > 1, "no events")
