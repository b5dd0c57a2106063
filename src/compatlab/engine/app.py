"""The lab engine's FastAPI app: wiring, request guard and error shapes. Routes live in
native.py (Ollama's /api) and openai_api.py (/v1)."""

import json
import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from compatlab import __version__
from compatlab.engine import native, openai_api
from compatlab.engine.errors import ApiError, native_error, openai_error
from compatlab.engine.frameworks import GIN, GIN_JSON, ContentTypes, route_error
from compatlab.engine.profiles import PROFILES, Profile
from compatlab.engine.runtime import EngineState
from compatlab.engine.settings import EngineSettings

log = logging.getLogger("compatlab.engine")
TOO_LARGE = "compatlab.body_too_large"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _error(profile: Profile, path: str, status: int, message: str, param: str | None = None) -> Response:
    """An error in the shape of the API the client called."""
    if path.startswith("/v1"):
        return openai_error(profile, status, message, param)
    if not profile.native_api:  # a path llama-server or vLLM does not have, as their framework answers it
        return route_error(profile.framework, 404) if status == 404 else openai_error(profile, status, message, param)
    return native_error(status, message)


class RequestGuard:
    """Reads every POST body as JSON, whatever its Content-Type (Ollama does; `curl -d` sends a form
    type), and refuses bodies over the size limit with 413 instead of reading them."""

    def __init__(self, app, limit: int, profile: Profile) -> None:
        self.app, self.limit, self.profile = app, limit, profile

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        scope = {**scope, "headers": headers + [(b"content-type", b"application/json")]}
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            return await self._too_large(scope, receive, send)
        received = 0
        body_read = False

        async def limited():
            # The body in one message: the route reads all of it anyway, and only a whole body
            # can be cleaned of lone surrogates.
            nonlocal received, body_read
            if body_read:
                return await receive()  # after the body only http.disconnect comes
            chunks = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                chunks.append(message.get("body", b""))
                received += len(chunks[-1])
                if received > self.limit:
                    scope[TOO_LARGE] = True
                    body_read = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                if not message.get("more_body", False):
                    break
            body_read = True
            return {"type": "http.request", "body": _without_lone_surrogates(b"".join(chunks)), "more_body": False}

        return await self.app(scope, limited, send)

    async def _too_large(self, scope, receive, send):
        message = f"request body too large: the limit is {self.limit} bytes"
        response = _error(self.profile, scope["path"], 413, message)
        await response(scope, receive, send)


def _without_lone_surrogates(body: bytes) -> bytes:
    """Go's encoding/json reads a lone surrogate escape ("\\ud800") as U+FFFD. Python's keeps it, and
    that str cannot be encoded as UTF-8 later (hashing, the response): a 500. Do as Go does."""
    if not _SURROGATE_ESCAPE.search(body):
        return body
    try:
        return json.dumps(_replace_surrogates(json.loads(body)), ensure_ascii=False).encode()
    except (ValueError, RecursionError):
        return body  # not JSON: the route's own parse reports it


def _replace_surrogates(value):
    if isinstance(value, str):  # valid pairs are already one code point here; only lone ones remain
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


def add_error_handling(app: FastAPI, profile: Profile, max_body_bytes: int) -> None:
    """The request guard and every error in the shape of the API called (the lab engine's and
    the llama front's alike)."""
    app.add_middleware(RequestGuard, limit=max_body_bytes, profile=profile)
    app.add_middleware(ContentTypes, framework=profile.framework)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _error(profile, request.url.path, exc.status, exc.message, exc.param)

    def unbound(response: Response) -> Response:
        """A body that could not be read into the request: on Ollama's /v1 that is the
        middleware's own c.AbortWithStatusJSON, with gin's JSON type (frameworks.py)."""
        if profile.framework == GIN:
            response.headers["content-type"] = GIN_JSON
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if request.scope.get(TOO_LARGE):
            return _error(profile, request.url.path, 413, f"request body too large: the limit is {max_body_bytes} bytes")
        return unbound(_error(profile, request.url.path, 400, _describe(exc)))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        path = request.url.path
        if request.scope.get(TOO_LARGE):
            return _error(profile, path, 413, f"request body too large: the limit is {max_body_bytes} bytes")
        if exc.status_code in (404, 405):  # the router's: no handler of the engine ever ran
            return route_error(profile.framework, exc.status_code)
        # e.g. FastAPI's 400 for a body it cannot parse (bad UTF-8, deep nesting)
        return unbound(_error(profile, path, exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return _error(profile, request.url.path, 500, f"internal error: {type(exc).__name__}")


def create_app(settings: EngineSettings | None = None) -> FastAPI:
    settings = settings or EngineSettings()
    if settings.profile not in PROFILES:
        raise ValueError(f"unknown profile {settings.profile!r}; choose one of {', '.join(PROFILES)}")
    profile = PROFILES[settings.profile]
    app = FastAPI(title="compatlab lab engine", version=__version__,
                  description="A deterministic engine that speaks Ollama's API and the OpenAI-compatible "
                              f"/v1 API. Profile: {profile.name}.")
    app.state.engine = EngineState(settings=settings, profile=profile)
    if profile.native_api:
        app.include_router(native.router)
    app.include_router(openai_api.router)
    add_error_handling(app, profile, settings.max_body_bytes)

    @app.get("/lab/status", tags=["lab"])
    async def lab_status() -> dict:
        """compatlab's own route: tells the lab engine apart from a real Ollama, for doctor and tests."""
        state = app.state.engine
        return {"engine": "compatlab", "version": __version__, "profile": profile.name,
                "settings": {k: v for k, v in vars(settings).items()},
                "active_streams": state.active_streams,
                "loaded": [name for name, _ in state.residency.loaded()]}

    if profile.health_route == "status":
        @app.get("/health", tags=["llamacpp"])
        async def status_health() -> dict:
            return {"status": "ok"}
    if profile.health_route == "empty":
        @app.get("/health", tags=["vllm"])
        async def empty_health() -> Response:
            return Response(status_code=200)

        @app.get("/version", tags=["vllm"])
        async def version() -> dict:
            return {"version": profile.version}
    return app


def _describe(exc: RequestValidationError) -> str:
    """One readable line for the first problem, like Go's encoding/json gives."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    location = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    if first.get("type") == "json_invalid":
        return f"invalid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
    if first.get("type") == "missing" and not location:
        return "missing request body"
    if first.get("type") == "model_attributes_type" and not location:
        return "invalid request: the body must be a JSON object"
    return f"invalid request: {location or 'body'}: {first.get('msg')}"
