"""Ollama's rules for a model reference: what "invalid model name" means.

A port of types/model/name.go at v0.32.15 (ParseNameBare, Merge with DefaultName, IsFullyQualified,
isValidPart): a name is [host/][namespace/]model[:tag], the missing parts filled with
registry.ollama.ai, library and latest; each part 1 to 80 characters (a host up to 350) of
letters, digits, "_", "-" and "."; a part starts with a letter, a digit or "_"; a namespace has
no "."; only a host may hold ":" (a port). internal/modelref ParseRef first trims spaces and
takes off a ":cloud" or ":local" source suffix.
"""

DEFAULTS = {"host": "registry.ollama.ai", "namespace": "library", "tag": "latest"}
MISSING = "!MISSING!"  # a part the name promised with a separator but left empty (name.go MissingPart)


def _cut_promised(text: str, separator: str) -> tuple[str, str, bool]:
    before, found, after = text.rpartition(separator)
    if not found:
        return text, "", False
    return before or MISSING, after or MISSING, True


def parse(text: str) -> dict[str, str]:
    """host, namespace, model and tag, as ParseName gives them (defaults merged in)."""
    parts = {"host": "", "namespace": "", "model": "", "tag": ""}
    if text.rfind(":") > text.rfind("/"):
        text, parts["tag"], _ = _cut_promised(text, ":")
    text, parts["model"], promised = _cut_promised(text, "/")
    if not promised:
        parts["model"] = text
    else:
        text, parts["namespace"], promised = _cut_promised(text, "/")
        if not promised:
            parts["namespace"] = text
        else:
            parts["host"] = text.split("://", 1)[-1]
    return {kind: value or DEFAULTS.get(kind, "") for kind, value in parts.items()}


def _valid_part(kind: str, value: str) -> bool:
    if not 1 <= len(value) <= (350 if kind == "host" else 80):
        return False
    if not (value[0].isascii() and (value[0].isalnum() or value[0] == "_")):
        return False
    for char in value[1:]:
        if char in "_-" or (char.isascii() and char.isalnum()):
            continue
        if char == "." and kind != "namespace":
            continue
        if char == ":" and kind == "host":
            continue
        return False
    return True


def without_source(text: str) -> str:
    """The reference without Ollama's ":cloud"/":local" source suffix, spaces trimmed."""
    text = text.strip()
    base, colon, suffix = text.rpartition(":")
    if colon and suffix.strip().lower() in ("cloud", "local"):
        return base
    return text


def is_valid(text: str) -> bool:
    """Would Ollama accept this reference as a model name (not whether the model exists)?"""
    return all(_valid_part(kind, value) for kind, value in parse(without_source(text)).items())
