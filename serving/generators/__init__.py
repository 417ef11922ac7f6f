"""Generator adapters and the factory that picks one from the settings."""

from __future__ import annotations

from vraagbaak_core.ports import Generator
from vraagbaak_core.settings import Settings


def build_generator(settings: Settings) -> Generator:
    """``generator.backend``: "openai" (vLLM over HTTP) or "transformers" (in-process)."""
    backend = settings.generator.backend
    if backend == "openai":
        from serving.generators.openai_http import OpenAIHTTPGenerator

        return OpenAIHTTPGenerator.from_settings(settings)
    if backend == "transformers":
        from serving.generators.transformers_local import TransformersGenerator

        return TransformersGenerator.from_settings(settings)
    raise ValueError(f"unknown generator.backend {backend!r}; allowed: openai, transformers")
