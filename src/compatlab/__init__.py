"""compatlab: a course kit on how local LLM engines are (and are not) OpenAI-compatible."""

__version__ = "0.1.0"

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
DEFAULT_ENGINE_PORT = 11435

__all__ = ["__version__", "DEFAULT_OLLAMA_HOST", "DEFAULT_ENGINE_PORT"]
