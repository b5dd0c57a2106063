"""The lab models' "mind": a reply that is a pure function of the conversation and the seed.

Nothing here knows about HTTP. Both API layers turn their requests into a `Conversation` and
render the same `Reply`, so one conversation gets the same answer on /api/chat and /v1.
"""

import hashlib
import json
import random
import re
from dataclasses import dataclass, field

from compatlab.engine.schema_values import UnsupportedSchema, value_for_schema
from compatlab.engine.tokens import count_tokens, tokenize

PER_MESSAGE_TOKENS = 4  # what a chat template adds around each message


@dataclass(frozen=True)
class ToolCall:
    """A function call the model decided to make; arguments are already parsed."""

    id_seed: str
    name: str
    arguments: dict

    def call_id(self, prefix: str = "call_", length: int = 8) -> str:
        """Ollama's shape is "call_" + 8 chars of [a-z0-9]; profiles pick other shapes."""
        digest = hashlib.sha256(self.id_seed.encode()).digest()
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return prefix + "".join(alphabet[b % 36] for b in (digest * 2)[:length])


@dataclass(frozen=True)
class Message:
    role: str
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_name: str = ""


@dataclass(frozen=True)
class Conversation:
    """What the model sees, whichever API it came through."""

    family: str
    messages: tuple[Message, ...]
    seed: int
    tools: tuple[dict, ...] = ()  # OpenAI/Ollama function specs: {"name", "description", "parameters"}
    tool_choice: str | None = "auto"  # "auto" | "none" | "required" | a tool name
    format: str | dict | None = None  # None, "json" or a JSON Schema
    think: bool = False
    num_predict: int | None = None  # None or negative: no limit
    stop: tuple[str, ...] = ()


@dataclass
class Reply:
    """The whole answer, already split into the tokens that will be streamed."""

    thinking: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    done_reason: str = "stop"  # "stop" | "length"
    stop_sequence: str | None = None  # the stop string that ended the reply (vLLM's stop_reason)
    prompt_tokens: int = 0
    tool_call_tokens: int = 0

    @property
    def eval_count(self) -> int:
        return len(self.thinking) + len(self.content) + self.tool_call_tokens


class BadConversation(ValueError):
    """The request cannot be answered as asked (e.g. a schema the model cannot satisfy)."""


_VOCAB = (
    "the engine streams each token as a small chunk and the client joins them into text "
    "while a proxy may reshape every frame before it reaches the browser so timing matters "
    "and usage counts tell you how many tokens were read and written by the model today"
).split()


def _digest(conversation: Conversation) -> str:
    blob = json.dumps(
        {
            "family": conversation.family,
            "messages": [
                [m.role, m.content, [[c.name, c.arguments] for c in m.tool_calls], m.tool_name]
                for m in conversation.messages
            ],
            "tools": [t.get("name") for t in conversation.tools],
            "tool_choice": conversation.tool_choice,
            "format": conversation.format,
            "think": conversation.think,
            "seed": conversation.seed,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _last_user_text(messages: tuple[Message, ...]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


def _tool_result_since_last_user(messages: tuple[Message, ...]) -> Message | None:
    for message in reversed(messages):
        if message.role == "user":
            return None
        if message.role == "tool":
            return message
    return None


def _requested_length(text: str) -> int | None:
    """ "…in 200 words" asks the lab model for a reply of that many tokens (benchmarks use it)."""
    match = re.search(r"\b(\d{1,5})\s+(?:words|tokens)\b", text)
    return min(int(match.group(1)), 8192) if match else None


def _capitalised_words(text: str) -> list[str]:
    """Names in the user's message ("Paris") make readable tool arguments."""
    words = re.findall(r"[A-Za-z][A-Za-z-]+", text)
    return [w for i, w in enumerate(words) if w[0].isupper() and i > 0] or []


def _prose(rng: random.Random, n_tokens: int, opening: str) -> str:
    """Readable filler text of exactly n_tokens tokens (unless the opening is longer) ending in "."."""
    tokens = tokenize(opening)
    sentence_left = 0
    while len(tokens) < n_tokens - 1:
        if sentence_left == 0:
            sentence_left = rng.randint(6, 12)
            word = rng.choice(_VOCAB).capitalize()
            tokens.append(" " + word if tokens else word)
        else:
            tokens.append(" " + rng.choice(_VOCAB))
        sentence_left -= 1
        if sentence_left == 0 and len(tokens) < n_tokens - 2:  # room for more words after the "."
            tokens.append(".")
    text = "".join(tokens[: max(0, n_tokens - 1)])
    return text if text.endswith(".") else text + "."


def _quote(text: str, words: int = 8) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def prompt_token_count(conversation: Conversation) -> int:
    """Input tokens: every message plus template overhead, plus the tool definitions."""
    total = 0
    for message in conversation.messages:
        total += PER_MESSAGE_TOKENS + count_tokens(message.content)
        for call in message.tool_calls:
            total += count_tokens(json.dumps({"name": call.name, "arguments": call.arguments}))
    if conversation.tools:
        total += count_tokens(json.dumps(list(conversation.tools)))
    return total


def _choose_tool(conversation: Conversation) -> dict | None:
    """Which tool to call now, or None to answer in text."""
    tools = conversation.tools
    choice = conversation.tool_choice
    if not tools or choice == "none":
        return None
    if choice not in (None, "auto", "required"):
        named = next((t for t in tools if t.get("name") == choice), None)
        if named is None:
            raise BadConversation(f"tool_choice names a tool that is not defined: {choice!r}")
        return named
    # After a tool result the model answers in text, so a tool loop ends; "required" never does.
    if choice != "required" and _tool_result_since_last_user(conversation.messages):
        return None
    # The tool the user names: its full name first, then a telling part ("weather" in get_weather).
    asked = _last_user_text(conversation.messages).lower()
    names = [str(tool.get("name", "")).lower() for tool in tools]
    for tool, name in zip(tools, names):
        if name and (name in asked or name.replace("_", " ") in asked):
            return tool
    asked_words = set(re.findall(r"[a-z]+", asked))
    for tool, name in zip(tools, names):
        if any(len(part) >= 4 and part in asked_words for part in re.split(r"[_\W]+", name)):
            return tool
    return tools[0]


def _structured(conversation: Conversation, rng_seed: int, words: list[str]) -> str:
    schema = conversation.format
    if schema == "json":
        turn = sum(1 for m in conversation.messages if m.role == "user")
        value: object = {"reply": _quote(_last_user_text(conversation.messages)), "turn": turn}
    else:
        try:
            value = value_for_schema(schema, seed=rng_seed, words=words)
        except UnsupportedSchema as exc:
            raise BadConversation(f"cannot produce output for this schema: {exc}") from exc
    return json.dumps(value, ensure_ascii=False)


def _apply_stop(text: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    """Cut at the earliest stop string; the stop string itself is not returned."""
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return text, None
    position, stop = min(hits)
    return text[:position], stop


def plan_reply(conversation: Conversation) -> Reply:
    """Decide the whole reply; pure and deterministic."""
    digest = _digest(conversation)
    rng = random.Random(digest)
    reply = Reply(prompt_tokens=prompt_token_count(conversation))
    last_user = _last_user_text(conversation.messages)
    words = _capitalised_words(last_user)

    if conversation.think:
        plan = f"The user wrote: {_quote(last_user, 6) or 'nothing'}. I will answer briefly and exactly."
        reply.thinking = tokenize(_prose(rng, rng.randint(12, 24), plan))

    tool = _choose_tool(conversation)
    if tool is not None:
        schema = tool.get("parameters") or {"type": "object", "properties": {}}
        try:
            arguments = value_for_schema(schema, seed=rng.randrange(2**32), words=words)
        except UnsupportedSchema as exc:
            raise BadConversation(f"cannot call tool {tool.get('name')!r}: {exc}") from exc
        if not isinstance(arguments, dict):
            arguments = {}
        call = ToolCall(f"{digest}:0", str(tool.get("name", "")), arguments)
        reply.tool_calls = [call]
        reply.tool_call_tokens = count_tokens(json.dumps({"name": call.name, "arguments": arguments}))
    elif conversation.format is not None:
        # Structured output: stop sequences are ignored so they never cut the JSON.
        reply.content = tokenize(_structured(conversation, rng.randrange(2**32), words))
    else:
        result = _tool_result_since_last_user(conversation.messages)
        if result is not None:
            name = result.tool_name or "tool"
            opening = f"The {name} tool returned: {_quote(result.content, 24)}"
            text = _prose(rng, count_tokens(opening) + rng.randint(6, 12), opening)
        else:
            turn = sum(1 for m in conversation.messages if m.role == "user")
            opening = f'Turn {turn}. You said "{_quote(last_user)}".' if last_user else ""
            length = _requested_length(last_user) or rng.randint(18, 40)
            text = _prose(rng, length, opening)
        text, reply.stop_sequence = _apply_stop(text, conversation.stop)
        reply.content = tokenize(text)

    limit = conversation.num_predict
    if limit is not None and limit >= 0 and reply.eval_count > limit:
        reply.thinking = reply.thinking[:limit]
        reply.content = reply.content[: limit - len(reply.thinking)]
        reply.tool_calls, reply.tool_call_tokens = [], 0  # a call cut short is no call
        reply.done_reason, reply.stop_sequence = "length", None
    return reply
