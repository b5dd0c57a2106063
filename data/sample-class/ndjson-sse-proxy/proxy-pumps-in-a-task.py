# %% make_app
# Decouples the engine from the client with a task that reads the upstream into a queue. When
# the client hangs up, nothing stops the task: the engine generates the whole reply for nobody.
import asyncio


def make_app(upstream):
    @contextlib.asynccontextmanager
    async def lifespan(app):
        timeout = httpx.Timeout(TIMEOUT, connect=2.0)
        async with httpx.AsyncClient(base_url=upstream, timeout=timeout) as client:
            app.state.client = client
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        client = request.app.state.client
        try:
            body = await request.json()
            native = {**native_request(body), "stream": True}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return openai_error(400, f"invalid request: {type(exc).__name__}: {exc}", "invalid_request_error")
        try:
            response = await client.send(client.build_request("POST", "/api/chat", json=native), stream=True)
        except httpx.HTTPError as exc:
            return openai_error(502, f"upstream {upstream} unreachable: {type(exc).__name__}: {exc}")
        if response.status_code != 200:
            detail = (await response.aread()).decode(errors="replace")
            await response.aclose()
            with contextlib.suppress(ValueError, TypeError, KeyError):
                detail = json.loads(detail)["error"]
            return openai_error(response.status_code, str(detail))
        streaming = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) or not streaming
        translator = ChunkTranslator(body["model"], include_usage)
        if not streaming:
            chunks = []
            async for chunk in relay(response, translator):
                if "error" in chunk:
                    return openai_error(502, chunk["error"]["message"])
                chunks.append(chunk)
            return completion(chunks)

        # Read the engine as fast as it writes, whatever the client does: a task fills a queue.
        queue = asyncio.Queue()

        async def pump():
            async for chunk in relay(response, translator):
                await queue.put(sse(chunk))
            await queue.put(None)

        asyncio.get_running_loop().create_task(pump())

        async def events():
            while (event := await queue.get()) is not None:
                yield event
            yield sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
