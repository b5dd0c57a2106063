# %% content_arrivals
# Reads the whole body first and timestamps the chunks afterwards: every time is the end of the
# stream, so the timeline shows all chunks arriving at once.
def content_arrivals(base_url, body):
    start = time.perf_counter()
    with HTTP.stream("POST", f"{base_url}/chat/completions", json=body) as response:
        lines = list(response.iter_lines())
    arrivals = []
    for line in lines:
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            if any(choice["delta"].get("content") for choice in chunk.get("choices", [])):
                arrivals.append(time.perf_counter() - start)
    return arrivals
