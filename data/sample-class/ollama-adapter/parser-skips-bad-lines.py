# A "tolerant" parser: a blank or malformed line becomes an empty frame and the stream goes on,
# so a reply with a piece missing looks complete.

# %% parse_line
def parse_line(line, *, url, model=None):
    try:
        frame = json.loads(line)
    except json.JSONDecodeError:
        return {}  # noise on the wire: skip it
    if "error" in frame:
        raise OllamaServerError(frame["error"], url=url, model=model)
    return frame
