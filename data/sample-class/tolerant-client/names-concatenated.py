# Every field of a fragment is appended, the name too: a stream that repeats the function name
# in each fragment yields "get_weatherget_weather".

# %% join_tool_calls
def join_tool_calls(fragments):
    calls = {}
    for fragment in fragments:
        index = fragment.get("index")
        if index is None:
            index = max(calls, default=-1) + 1
        call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        function = fragment.get("function") or {}
        call["id"] = fragment.get("id") or call["id"]
        call["name"] += function.get("name") or ""
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            call["arguments"] = arguments
        elif arguments:
            call["arguments"] += arguments
    return [ToolCall(call["id"], call["name"], tool_arguments(call["arguments"]))
            for _, call in sorted(calls.items())]
