"""The embedded lab engine: Ollama's native API and the OpenAI-compatible /v1 API, deterministic.

The app is `compatlab.engine.app.create_app`, served by `compatlab.engine.server`. Nothing is
imported here: the command line reads `catalog` and `profiles` (plain data) for its options,
and that must not load FastAPI for every `compatlab` command.
"""
