"""The lab engine's models: three deterministic models, and fault variants reachable by tag."""

from dataclasses import dataclass

from compatlab.engine.faults import FAULTS  # the fault variants below, one per tag


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
