# %% relay
# Stops at the first line it cannot use, and says nothing: the client sees a short reply and
# no error, exactly what Ollama's own /v1 does with an error mid-stream.
async def relay(response, translator):
    try:
        async for line in response.aiter_lines():
            if not line.strip():
                continue
            try:
                frame = json.loads(line)
            except ValueError:
                return
            if "error" in frame:
                return
            for chunk in translator.translate(frame):
                yield chunk
    except httpx.HTTPError:
        return
    finally:
        await response.aclose()
