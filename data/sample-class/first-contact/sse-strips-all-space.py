# Strips all surrounding whitespace from each data value instead of at most one leading space.

# %% parse_sse
def parse_sse(lines):
    data = []
    for line in lines:
        if line == "":
            if data:
                payload, data = "\n".join(data), []
                if payload == "[DONE]":
                    return
                yield payload
        elif line.startswith("data:"):
            data.append(line[len("data:"):].strip())
    if data and "\n".join(data) != "[DONE]":
        yield "\n".join(data)
