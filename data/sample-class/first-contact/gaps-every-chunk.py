# Gaps between every pair of chunks, including the finish and usage chunks that carry no text.

# %% gaps
def gaps(chunks):
    times = [t for t, _ in chunks]
    return [later - earlier for earlier, later in zip(times, times[1:])]
