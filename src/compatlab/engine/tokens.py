"""The lab engine's tokenizer: BPE-like pieces that join back to the exact text."""

import re

# A word with its leading space, a run of up to three digits, one other character, or spaces.
# Like a real BPE stream (" world", "123", "{"), and lossless: "".join(tokenize(t)) == t.
_TOKEN = re.compile(r"\s*[A-Za-z]+|\s*\d{1,3}|\s*[^\sA-Za-z\d]|\s+")


def tokenize(text: str) -> list[str]:
    """Split text into tokens; joining them gives the text back."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """How many tokens the lab engine bills for this text."""
    return len(_TOKEN.findall(text))
