"""Log probabilities for the lab model's tokens: deterministic, like the rest of its reply.

The lab model has no distribution to sample from, so each token gets a made-up but stable one:
the chosen token is always the most likely (as in greedy decoding), its log probability a
function of the token, its position and the seed, and the alternatives are other tokens of the
lab's vocabulary, each less likely than the one before. Same request, same numbers.

The shape is Ollama's api.Logprob (api/types.go@v0.32.15), which is also OpenAI's chat format:
{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}, …]}, with
top_logprobs left out when none were asked for (`omitempty`).
"""

import zlib

ALTERNATIVES = (" the", " a", ".", ",", " and", " to", " of", "\n", " is", " it", " that", " in", " you",
                " for", " on", " with", " as", " at", " this", " be", " or", " from")


def _draw(*parts: object) -> float:
    """A stable number in [0, 1) from the parts."""
    return zlib.crc32(":".join(map(str, parts)).encode()) / 2**32


def entry(token: str, position: int, seed: object, top: int) -> dict:
    """One generated token's log probability, with `top` alternatives (0: none)."""
    chosen = -round(0.02 + 1.5 * _draw(seed, position, token), 6)
    value: dict = {"token": token, "logprob": chosen, "bytes": list(token.encode())}
    if top:  # other tokens of the vocabulary, from a stable place in it, each less likely
        start = int(_draw(seed, position, "alternatives") * len(ALTERNATIVES))
        others = [ALTERNATIVES[(start + k) % len(ALTERNATIVES)] for k in range(len(ALTERNATIVES))]
        ranked, logprob = [{k: value[k] for k in ("token", "logprob", "bytes")}], chosen
        for candidate in [other for other in others if other != token][:top - 1]:
            logprob = round(logprob - 0.3 - 2.0 * _draw(seed, position, candidate), 6)
            ranked.append({"token": candidate, "logprob": logprob, "bytes": list(candidate.encode())})
        value["top_logprobs"] = ranked
    return value


def entries(tokens: list[str], seed: object, top: int, start: int = 0) -> list[dict]:
    """Log probabilities of consecutive tokens, the first at position `start`."""
    return [entry(token, start + i, seed, top) for i, token in enumerate(tokens)]


class Scorer:
    """The "logprobs" of each chunk (or of a whole reply) when the request asked for them:
    api.Logprob entries (engine/logprobs.py), thinking and text tokens alike, numbered in order."""

    def __init__(self, wanted: bool | None, top: int | None, seed: object) -> None:
        self.wanted, self.top, self.seed, self.position = bool(wanted), top or 0, seed, 0

    def tokens(self, tokens: list[str]) -> dict:
        if not self.wanted or not tokens:
            return {}  # `logprobs,omitempty`
        found = entries(tokens, self.seed, self.top, self.position)
        self.position += len(tokens)
        return {"logprobs": found}

    def piece(self, piece) -> dict:
        return self.tokens([piece.text] if piece.kind in ("thinking", "content") else [])

    def whole(self, reply) -> dict:
        return self.tokens([*reply.thinking, *reply.content])
