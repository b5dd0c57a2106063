"""What both APIs share for one request: find the model, honour its fault, load it, stream."""

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from fastapi import Request

from compatlab.engine import model_refs
from compatlab.engine.catalog import MODELS, LabModel, find_model
from compatlab.engine.errors import ApiError
from compatlab.engine.faults import NONE, Fault, fault
from compatlab.engine.lab_model import BadConversation, Conversation, Reply, plan_reply
from compatlab.engine.runtime import ClientGone, EngineState, Timing

# Ollama's own words when a runner dies before answering.
RUNNER_DIED = "llama runner process has terminated: exit status 2"
MID_STREAM_ERROR = "an error was encountered while running the model"


class DropConnection(Exception):
    """Raised inside a stream to cut the connection without finishing the response."""


class _HideDeliberateDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


logging.getLogger("uvicorn.error").addFilter(_HideDeliberateDrops())


@dataclass
class Job:
    """One request on its way through the engine."""

    model: LabModel
    name: str  # the name as the client sent it (echoed back, as Ollama does)
    fault: Fault = NONE  # what this model does wrong on purpose (faults.py)
    timing: Timing = field(default_factory=Timing)


def state_of(request: Request) -> EngineState:
    return request.app.state.engine


def find(state: EngineState, name: str, *, handler: str) -> Job:
    """The job for a model name, or the error Ollama's handler gives: `handler` is "chat",
    "generate" or "embed", the Go handler that answers (each /v1 route reaches one of them).
    server/routes.go@v0.32.15: a missing name is ChatHandler's 400 "model is required" but
    GenerateHandler's and EmbedHandler's 404 "model '' not found" (writeModelRefParseError's
    fallback); a name Ollama cannot parse is a 400 "invalid model name" (model_refs.py); a
    model without the capability is `"<name as asked>" does not support chat` (or generate)."""
    model = find_model(name)
    if model is None and state.profile.ignores_model_name:
        # a single-model llama-server serves any name with its one model
        capability = "embedding" if handler == "embed" else "completion"
        model = next(m for m in MODELS if capability in m.capabilities and m.fault is None)
    if model is None:
        if not name.strip():
            if handler == "chat":
                raise ApiError(400, "model is required")
            raise ApiError(404, f"model '{name}' not found")
        if state.profile.native_api and not model_refs.is_valid(name):
            raise ApiError(400, "invalid model name")
        raise ApiError(404, f"model '{name}' not found")
    asked = json.dumps(name, ensure_ascii=False)  # Go's %q
    if handler == "embed" and "embedding" not in model.capabilities:
        # a departure: Ollama's EmbedHandler asks no capability and embeds with any model;
        # the lab's chat models have no embedding to give
        raise ApiError(400, f"{asked} does not support embedding")
    if handler != "embed" and "completion" not in model.capabilities:
        raise ApiError(400, f"{asked} does not support {handler}")
    return Job(model, name, fault(model.fault or state.settings.fault))


def check_insert(job: Job, suffix: str | None) -> None:
    """A suffix asks the insert capability, which no lab model has: Model.CheckCapabilities
    (server/images.go@v0.32.15) says only "does not support insert", without the model's name."""
    if suffix and "insert" not in job.model.capabilities:
        raise ApiError(400, "does not support insert")


async def load(state: EngineState, job: Job, request: Request) -> None:
    """Load the model if it is not resident; faults that strike before any byte strike here."""
    if job.fault.runner_dies:
        raise ApiError(500, RUNNER_DIED)
    settings = state.settings
    load_ms = settings.slow_load_ms if job.fault.slow_load else settings.load_ms
    try:
        job.timing.load_ns = await state.residency.ensure_loaded(
            job.model.name, load_ms / 1000, request.is_disconnected
        )
    except ClientGone:
        raise ApiError(499, "request canceled") from None


# The words of Gemma's chat template, which vLLM and llama-server pass on as a 400.
NO_SYSTEM_ROLE = "System role not supported"


def plan(conversation: Conversation, quirks: Fault = NONE) -> Reply:
    """The reply, with the model and template quirks applied."""
    if quirks.refuses_system_role and any(m.role == "system" for m in conversation.messages):
        raise ApiError(400, NO_SYSTEM_ROLE)
    if quirks.loops_tools and conversation.tool_choice == "auto":
        conversation = replace(conversation, tool_choice="required")  # never stops calling
    try:
        return plan_reply(conversation)
    except BadConversation as exc:
        raise ApiError(400, str(exc)) from None


def fault_position(pieces: int) -> int:
    """After how many streamed pieces a mid-stream fault strikes: early, but after real content."""
    return min(3, max(1, pieces // 2))


async def counted(state: EngineState, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Track open streams, so a test can see a disconnected client's work end."""
    state.active_streams += 1
    try:
        async for data in stream:
            yield data
    finally:
        state.active_streams -= 1
