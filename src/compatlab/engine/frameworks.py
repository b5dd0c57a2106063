"""What an engine's HTTP framework, not its handlers, decides: the answer to a route it does not
have or a method a route does not take, and the content types its JSON and SSE replies carry.

- gin (Ollama): routing comes before any route's own middleware, so /api and /v1 alike get gin's
  plain text "404 page not found" and, because Ollama's router sets HandleMethodNotAllowed
  (server/routes.go@v0.32.15), "405 method not allowed", both as "text/plain". gin's c.JSON
  sends "application/json; charset=utf-8": every native reply, and the /v1 errors the middleware
  raises itself (a body it cannot bind). Ollama's /v1 writers set their own types instead:
  "application/json" for replies and the handler's errors, "text/event-stream" for streams
  (middleware/openai.go@v0.32.15; openai/openai.go@v0.4.7).
- cpp-httplib (llama-server): no 405; an unmatched method or path is llama-server's JSON 404
  "File Not Found". JSON replies are "application/json; charset=utf-8" and streams
  "text/event-stream" (observed on a live build: tests/test_real_tier.py).
- FastAPI (vLLM, and this engine): {"detail": "Not Found"} and {"detail": "Method Not Allowed"};
  "application/json", and Starlette adds "; charset=utf-8" to a text/event-stream reply.
"""

from fastapi.responses import JSONResponse, Response

GIN, HTTPLIB, FASTAPI = "gin", "cpp-httplib", "fastapi"

GIN_JSON = "application/json; charset=utf-8"  # c.JSON's
_SSE = (b"text/event-stream; charset=utf-8", b"text/event-stream")


def _content_type(framework: str, path: str, value: bytes) -> bytes:
    """What the framework would send where this engine's FastAPI sends `value`."""
    if framework == FASTAPI:
        return value
    if value == _SSE[0]:
        return _SSE[1]
    if value == b"application/json" and not (framework == GIN and path.startswith("/v1")):
        return GIN_JSON.encode()
    return value


def route_error(framework: str, status: int) -> Response:
    """The framework's own answer to an unknown route (404) or a wrong method (405)."""
    if framework == GIN:  # gin's serveError writes "text/plain", no charset (Starlette would add one)
        return Response({405: "405 method not allowed"}.get(status, "404 page not found"), status_code=status,
                        headers={"content-type": "text/plain"})
    if framework == HTTPLIB:
        return JSONResponse({"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}},
                            status_code=404)
    return JSONResponse({"detail": {405: "Method Not Allowed"}.get(status, "Not Found")}, status_code=status)


class ContentTypes:
    """ASGI middleware: every reply's Content-Type as the profile's framework writes it."""

    def __init__(self, app, framework: str) -> None:
        self.app, self.framework = app, framework

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.framework == FASTAPI:
            return await self.app(scope, receive, send)

        async def rewritten(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [
                    (name, _content_type(self.framework, scope["path"], value) if name == b"content-type" else value)
                    for name, value in message.get("headers", [])]}
            await send(message)

        return await self.app(scope, receive, rewritten)
