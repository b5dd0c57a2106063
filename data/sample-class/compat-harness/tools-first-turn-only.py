# A tool check that stops after the first turn: it never sends the tool result back.

# %% check_tools
def check_tools(base_url, model):
    first = post_chat(base_url, {"model": model, "messages": ASK_WEATHER, "tools": [WEATHER_TOOL]})
    choice = first["choices"][0]
    require(choice["finish_reason"] == "tool_calls", "no tool call")
    call = choice["message"]["tool_calls"][0]
    require(call["function"]["name"] == "get_weather", "wrong tool")
    arguments = call["function"]["arguments"]
    require(isinstance(arguments, str), "arguments are not a JSON string")
    jsonschema.validate(json.loads(arguments), WEATHER_TOOL["function"]["parameters"])
