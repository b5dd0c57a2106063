"""The lab engine's models: three deterministic models, and fault variants reachable by tag."""

from dataclasses import dataclass

# Fault kinds. A client selects one with the model tag (`lab:drop-mid-stream`) or the engine
# applies one to every model (`--fault`). Each is rendered the way real engines show it.
# The first six break the wire; the last three are model and template quirks that a
# compatibility harness must catch (the compat-harness lesson grades against them).
FAULTS = (
    "slow-load",  # the model load outlasts a typical client read timeout
    "malformed-line",  # a non-JSON line mid-stream
    "blank-line",  # an empty line mid-stream
    "error-mid-stream",  # an in-band {"error": ...} after some content, no done frame
    "drop-mid-stream",  # the connection closes mid-stream, no done frame
    "http-500",  # HTTP 500 before any byte
    "no-system-role",  # the chat template rejects system messages (Gemma's: "System role not supported")
    "tool-loop",  # the model calls a tool again after every tool result, as small models do
    "tool-args-object",  # /v1 tool arguments arrive as a JSON object, not a string (a naive proxy's bug)
)


@dataclass(frozen=True)
class LabModel:
    """One model the lab engine serves."""

    name: str  # full "name:tag"
    family: str  # "lab", "lab-think" or "lab-embed": the reply depends on this, not on the tag
    capabilities: tuple[str, ...]
    parameter_size: str
    fault: str | None = None
    embedding_length: int = 0

    @property
    def thinks(self) -> bool:
        return "thinking" in self.capabilities

    @property
    def chats(self) -> bool:
        return "completion" in self.capabilities


_CHAT = ("completion", "tools")

MODELS: tuple[LabModel, ...] = (
    LabModel("lab:latest", "lab", _CHAT, "0.1M"),
    LabModel("lab-think:latest", "lab-think", _CHAT + ("thinking",), "0.1M"),
    LabModel("lab-embed:latest", "lab-embed", ("embedding",), "0.1M", embedding_length=384),
    *(LabModel(f"lab:{fault}", "lab", _CHAT, "0.1M", fault=fault) for fault in FAULTS),
)
_BY_NAME = {model.name: model for model in MODELS}


def normalize_name(name: str) -> str:
    """Ollama's rule: a name without a tag means `:latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def find_model(name: str) -> LabModel | None:
    """The model of that name, or None."""
    return _BY_NAME.get(normalize_name(name.strip())) if name else None
