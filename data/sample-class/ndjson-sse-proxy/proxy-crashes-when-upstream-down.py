# %% make_app
# Never expects the upstream to be down: a refused connection escapes the route, and the client
# gets FastAPI's bare 500 "Internal Server Error" instead of a 502 that says what happened.
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
        response = await client.send(client.build_request("POST", "/api/chat", json=native), stream=True)
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

        async def events():
            async for chunk in relay(response, translator):
                yield sse(chunk)
            yield sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream",
                                 background=BackgroundTask(response.aclose))

    return app
