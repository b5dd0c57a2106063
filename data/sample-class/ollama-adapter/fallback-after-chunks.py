# Falls back on OllamaUnavailable even after chunks went out: the caller gets half of one
# engine's reply followed by all of another's.

# %% fallback
class Fallback:
    """Several adapters in order of preference, behind one `stream()`."""

    def __init__(self, adapters):
        self.adapters = list(adapters)
        self.served_by = None  # the adapter that served the last stream
        self.skipped = []  # (adapter, error) for each adapter that was unavailable: log these

    def stream(self, messages, tools=None, **opts):
        self.served_by, self.skipped = None, []
        for adapter in self.adapters:
            try:
                for chunk in adapter.stream(messages, tools=tools, **opts):
                    self.served_by = adapter
                    yield chunk
                return
            except OllamaUnavailable as exc:
                self.skipped.append((adapter, exc))
        raise OllamaUnavailable("no adapter is available", url=None)
