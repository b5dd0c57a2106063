# run_many creates the semaphore but never waits on it: every request starts at once, and the
# queue moves into the engine, where the application can neither bound nor measure it.

# %% run_many
@dataclass
class Run:
    index: int
    wait: float = 0.0
    first_token: float | None = None
    seconds: float = 0.0
    done: StreamChunk | None = None
    error: AdapterError | None = None


async def run_many(adapter, conversations, *, limit=4, timeout=None):
    gate, start = asyncio.Semaphore(limit), time.perf_counter()

    async def one(index, messages):
        run = Run(index)
        run.wait = time.perf_counter() - start
        try:
            async with contextlib.aclosing(adapter.stream(messages, timeout=timeout)) as chunks:
                async for chunk in chunks:
                    if run.first_token is None and (chunk.content or chunk.thinking or chunk.tool_calls):
                        run.first_token = time.perf_counter() - start
                    if chunk.done:
                        run.done = chunk
        except AdapterError as exc:
            run.error = exc
        run.seconds = time.perf_counter() - start
        return run

    return list(await asyncio.gather(*(one(index, messages) for index, messages in enumerate(conversations))))
