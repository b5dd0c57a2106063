"""What an engine's HTTP framework, not its handlers, decides: the answer to a route it does not
have or a method a route does not take, and the content types its JSON and SSE replies carry.

- gin (Ollama): routing comes before any route's own middleware, so /api and /v1 alike get gin's
  plain text "404 page not found", and "405 method not allowed" because Ollama's server sets
  HandleMethodNotAllowed [ollama-api.md §1, GenerateRoutes]. c.JSON sends "application/json;
  charset=utf-8"; the /v1 stream sets "text/event-stream" itself [ollama-api.md §4.3].
- cpp-httplib (llama-server): no 405; an unmatched method or path is llama-server's JSON 404
  "File Not Found". JSON replies are "application/json; charset=utf-8" and streams
  "text/event-stream" (observed on a live build: tests/test_real_tier.py).
- FastAPI (vLLM, and this engine): {"detail": "Not Found"} and {"detail": "Method Not Allowed"};
  "application/json", and Starlette adds "; charset=utf-8" to a text/event-stream reply.
"""

from fastapi.responses import JSONResponse, PlainTextResponse, Response

GIN, HTTPLIB, FASTAPI = "gin", "cpp-httplib", "fastapi"

_CONTENT_TYPES = {  # what this engine's FastAPI sends -> what the framework would
    GIN: {b"application/json": b"application/json; charset=utf-8",
          b"text/event-stream; charset=utf-8": b"text/event-stream"},
    HTTPLIB: {b"application/json": b"application/json; charset=utf-8",
              b"text/event-stream; charset=utf-8": b"text/event-stream"},
    FASTAPI: {},
}


def route_error(framework: str, status: int) -> Response:
    """The framework's own answer to an unknown route (404) or a wrong method (405)."""
    if framework == GIN:
        return PlainTextResponse({405: "405 method not allowed"}.get(status, "404 page not found"), status_code=status)
    if framework == HTTPLIB:
        return JSONResponse({"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}},
                            status_code=404)
    return JSONResponse({"detail": {405: "Method Not Allowed"}.get(status, "Not Found")}, status_code=status)


class ContentTypes:
    """ASGI middleware: every reply's Content-Type as the profile's framework writes it."""

    def __init__(self, app, framework: str) -> None:
        self.app, self.types = app, _CONTENT_TYPES[framework]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.types:
            return await self.app(scope, receive, send)

        async def rewritten(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [(name, self.types.get(value, value) if name == b"content-type" else value)
                                                  for name, value in message.get("headers", [])]}
            await send(message)

        return await self.app(scope, receive, rewritten)
