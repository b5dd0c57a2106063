"""The lab engine's faults, in one table: the tag a client asks for, and what it does.

A client selects one with the model tag (`lab:drop-mid-stream`), or the engine applies one to
every model (`--fault`). The first six break the wire, each the way real engines show it on each
API (the README's table); the last three are model and template quirks that a compatibility
harness must catch (the compat-harness lesson grades against them). The code asks a fault what
it does, never which one it is.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    tag: str
    # before any byte
    slow_load: bool = False  # the load takes --slow-load-ms: longer than a typical client read timeout
    runner_dies: bool = False  # HTTP 500, Ollama's "llama runner process has terminated"
    # mid-stream, after a few chunks of real content: what goes on the wire
    wire: str = ""  # "cut": a line cut short, not JSON; "blank": an empty line; "error": an in-band
    #                 error (Ollama's {"error"} line; on /v1 the profile's error event, or nothing);
    #                 "drop": the connection closes
    ends_stream: bool = False  # nothing follows: no done frame, no finish chunk, no [DONE]
    # the model and its template
    refuses_system_role: bool = False  # a system message is a 400 (Gemma's template)
    loops_tools: bool = False  # calls a tool again after every tool result, as small models do
    tool_arguments_as_object: bool = False  # /v1 arguments as a JSON object, not a string (a naive proxy's bug)


FAULTS: dict[str, Fault] = {fault.tag: fault for fault in (
    Fault("slow-load", slow_load=True),
    Fault("malformed-line", wire="cut"),
    Fault("blank-line", wire="blank"),
    Fault("error-mid-stream", wire="error", ends_stream=True),
    Fault("drop-mid-stream", wire="drop", ends_stream=True),
    Fault("http-500", runner_dies=True),
    Fault("no-system-role", refuses_system_role=True),
    Fault("tool-loop", loops_tools=True),
    Fault("tool-args-object", tool_arguments_as_object=True),
)}
NONE = Fault("")  # a clean model: every question answered no


def fault(tag: str | None) -> Fault:
    """The fault of that tag (NONE for no tag)."""
    return FAULTS[tag] if tag else NONE
