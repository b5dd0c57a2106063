# Falls back on any adapter error: a slow load, a server error or a protocol error is hidden
# behind a second engine's answer, and nobody learns the first one is broken.

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
            started = False
            try:
                for chunk in adapter.stream(messages, tools=tools, **opts):
                    if not started:
                        started, self.served_by = True, adapter
                    yield chunk
                return
            except AdapterError as exc:
                if started:
                    raise
                self.skipped.append((adapter, exc))
        raise OllamaUnavailable("no adapter is available", url=None)
