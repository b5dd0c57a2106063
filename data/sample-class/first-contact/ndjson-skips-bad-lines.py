# Skips every line that does not parse "to be tolerant", and takes any JSON value as a frame.

# %% parse_ndjson
def parse_ndjson(lines):
    frames = []
    for line in lines:
        try:
            frames.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a bad line: skip it and carry on
    return frames
