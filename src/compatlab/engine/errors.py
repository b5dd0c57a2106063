"""Errors in the shape of the API that was called: Ollama's {"error": "..."} or OpenAI's envelope."""

from fastapi.responses import JSONResponse

from compatlab.engine.profiles import Profile


class ApiError(Exception):
    """A request the engine refuses, with the HTTP status to refuse it with."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


def native_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def openai_error_body(profile: Profile, status: int, message: str, param: str | None = None) -> dict:
    """Each engine wraps errors a little differently; the differences are part of the lesson."""
    if profile.error_style == "llamacpp":
        # llama-server format_error_response: numeric code, no param [ollama-api.md §5.1]
        kind = {400: "invalid_request_error", 404: "not_found_error", 413: "invalid_request_error"}
        return {"error": {"code": status, "message": message, "type": kind.get(status, "server_error")}}
    if profile.error_style == "vllm":
        kind = {400: "BadRequestError", 404: "NotFoundError", 413: "BadRequestError"}
        return {"error": {"message": message, "type": kind.get(status, "InternalServerError"),
                          "param": param, "code": status}}
    # Ollama's openai.NewError: type by status; it never sets param or code, so both are null
    # whatever was refused (openai/openai.go@v0.32.15) [ollama-api.md §4.6]
    kind = {400: "invalid_request_error", 404: "not_found_error", 413: "invalid_request_error"}
    return {"error": {"message": message, "type": kind.get(status, "api_error"), "param": None, "code": None}}


def openai_error(profile: Profile, status: int, message: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(openai_error_body(profile, status, message, param), status_code=status)
