# Fallback moves on whenever an adapter becomes unavailable, even after its chunks went out: the
# caller gets half of one engine's answer followed by all of another's.

# %% fallback
class Fallback:
    """Several adapters in order of preference, behind one async `stream()`."""

    def __init__(self, adapters):
        self.adapters = list(adapters)
        self.served_by = None  # the adapter that served the last stream
        self.skipped = []  # (adapter, error) for each adapter that was unavailable: log these

    async def stream(self, messages, tools=None, **opts):
        self.served_by, self.skipped = None, []
        for adapter in self.adapters:
            started = False
            try:
                async with contextlib.aclosing(adapter.stream(messages, tools=tools, **opts)) as chunks:
                    async for chunk in chunks:
                        if not started:
                            started, self.served_by = True, adapter
                        yield chunk
                return
            except OllamaUnavailable as exc:
                self.skipped.append((adapter, exc))
        tried = [error.url for _, error in self.skipped]
        raise OllamaUnavailable(f"none of {len(self.adapters)} adapters is available",
                                url=tried[-1] if tried else None, tried=tried)
