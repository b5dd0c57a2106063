"""How one lab engine process behaves: set once from the command line."""

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSettings:
    profile: str = "ollama"
    tokens_per_second: float = 60.0  # 0: as fast as possible, no pacing at all
    ttft_ms: float = 80.0  # prompt evaluation before the first token
    load_ms: float = 400.0  # model load on first use or after unload
    slow_load_ms: float = 10_000.0  # the load time of `lab:slow-load`
    jitter: float = 0.25  # relative spread of per-token delays
    seed: int = 0  # used when a request gives no seed
    fault: str | None = None  # apply this fault to every model
    max_body_bytes: int = 4 * 1024 * 1024

    @classmethod
    def fast(cls, **overrides) -> "EngineSettings":
        """No pacing and no load time: what tests and benchmarks use."""
        return cls(**{"tokens_per_second": 0, "ttft_ms": 0, "load_ms": 0, **overrides})
