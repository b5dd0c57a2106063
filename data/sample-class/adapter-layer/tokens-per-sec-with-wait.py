# speeds divides the tokens by the time since the request: the wait for the first token is
# counted as streaming time, so an engine behind a queue or a model load looks slow.

# %% speeds
def speeds(start, text_times):
    if not text_times:
        return None, None
    first, last = text_times[0], text_times[-1]
    rate = len(text_times) / (last - start) if len(text_times) > 1 and last > first else None  # the wait included
    return first - start, rate
