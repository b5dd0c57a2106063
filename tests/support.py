"""Shared test data, stream parsers, and a free loopback port for servers the tests start."""

import json
import socket

import httpx


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"},
                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "description": "Current time in a timezone",
                 "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}},
                                "required": ["timezone"]}},
}


def sse_events(response: httpx.Response) -> list:
    """The data payloads of an SSE stream: dicts, or the string "[DONE]"."""
    events = []
    for block in response.text.split("\n\n"):
        data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
        if data:
            payload = "\n".join(data)
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def ndjson_lines(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]
