# A thorough stream check with one classic bug: it assumes delta.content is always a string.

# %% check_stream
def check_stream(base_url, model):
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "stream": True}
    text, finish, done = "", None, False
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=TIMEOUT) as response:
        require(response.status_code == 200, f"HTTP {response.status_code}")
        for data in sse_data(response):
            if data == "[DONE]":
                done = True
                continue
            chunk = json.loads(data)
            require("error" not in chunk, "error event")
            for choice in chunk["choices"]:
                if "content" in choice["delta"]:
                    text += choice["delta"]["content"]  # TypeError on llama-server's null
                finish = choice.get("finish_reason") or finish
    require(text and finish and done, "incomplete stream")
