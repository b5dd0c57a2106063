# %% native_request
# Copies messages across as they are: an assistant's tool-call arguments stay a JSON string,
# where Ollama's /api/chat wants an object, and tool results get no tool_name.
def native_request(body):
    request = {"model": body["model"], "stream": bool(body.get("stream", False))}
    request["messages"] = [{"role": m["role"], "content": m.get("content") or "",
                            **({"tool_calls": m["tool_calls"]} if m.get("tool_calls") else {})}
                           for m in body["messages"]]
    if body.get("tools"):
        request["tools"] = body["tools"]
    options = {}
    for key in ("temperature", "top_p", "seed", "stop", "frequency_penalty", "presence_penalty"):
        if body.get(key) is not None:
            options[key] = body[key]
    if body.get("max_tokens") is not None:
        options["num_predict"] = body["max_tokens"]
    if options:
        request["options"] = options
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_object":
        request["format"] = "json"
    elif response_format.get("type") == "json_schema":
        request["format"] = response_format["json_schema"]["schema"]
    return request
