"""The embedded lab engine: Ollama's native API and the OpenAI-compatible /v1 API, deterministic."""

from compatlab.engine.app import create_app
from compatlab.engine.catalog import FAULTS, MODELS
from compatlab.engine.profiles import PROFILES
from compatlab.engine.settings import EngineSettings

__all__ = ["create_app", "EngineSettings", "FAULTS", "MODELS", "PROFILES"]
