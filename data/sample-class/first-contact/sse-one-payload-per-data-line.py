# Treats every `data:` line as a payload of its own: fine for one-line events, wrong for
# events whose data spans several lines.

# %% parse_sse
def parse_sse(lines):
    for line in lines:
        if line.startswith("data:"):
            payload = line[len("data:"):].lstrip(" ")
            if payload == "[DONE]":
                return
            yield payload
