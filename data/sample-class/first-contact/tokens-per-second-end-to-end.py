# Tokens divided by the time since the request: the wait for the first token is counted as
# decoding time, and n arrivals are treated as n intervals.

# %% tokens_per_second
def tokens_per_second(chunks):
    times = [t for t, text in chunks if text]
    if not times or times[-1] == 0:
        return None
    return len(times) / times[-1]
