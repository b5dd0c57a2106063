"""The lab's embeddings, for /api/embed, /api/embeddings and /v1/embeddings alike: a
deterministic unit vector per text, and the input and dimension checks both APIs make."""

import hashlib
import math
import random
import struct

from compatlab.engine.catalog import LabModel
from compatlab.engine.errors import ApiError


def embedding(text: str, size: int, dimensions: int | None = None) -> list[float]:
    """A deterministic unit vector for the text: same text, same vector, on any machine."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    vector = [rng.gauss(0.0, 1.0) for _ in range(size)][: dimensions or size]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    # Round through float32, the precision real engines return.
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in vector]


def embed_inputs(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ApiError(400, "invalid input type")


def check_dimensions(model: LabModel, dimensions: int | None) -> None:
    if dimensions is not None and not 1 <= dimensions <= model.embedding_length:
        raise ApiError(400, f"dimensions must be between 1 and {model.embedding_length}")
