"""The factory of the ``Generator`` port: picks an adapter from the settings (adapters are imported only here)."""

from __future__ import annotations

from vraagbaak_core.ports import Embedder, Generator
from vraagbaak_core.settings import Settings


def build_generator(settings: Settings, embedder: Embedder | None = None) -> Generator:
    """``generator.backend``: "extractive" (sentences of the sources; needs the embedder),
    "openai" (vLLM over HTTP) or "transformers" (in-process)."""
    backend = settings.generator.backend
    if backend == "extractive":
        return build_extractive(settings, embedder)
    if backend == "openai":
        from serving.staff.generators.openai_http import OpenAIHTTPGenerator

        return OpenAIHTTPGenerator.from_settings(settings)
    if backend == "transformers":
        from serving.staff.generators.transformers_local import TransformersGenerator

        return TransformersGenerator.from_settings(settings)
    raise ValueError(f"unknown generator.backend {backend!r}; allowed: extractive, openai, transformers")


def build_extractive(settings: Settings, embedder: Embedder | None) -> Generator:
    from serving.staff.generators.extractive import ExtractiveGenerator

    if embedder is None:
        raise ValueError("the extractive generator scores sentences with the embedder; pass the service's embedder")
    return ExtractiveGenerator.from_settings(settings, embedder)


def build_fallback(settings: Settings, embedder: Embedder | None) -> Generator | None:
    """The stand-in for an unavailable model server (``generator.fallback``), or None."""
    if settings.generator.fallback != "extractive" or settings.generator.backend == "extractive":
        return None
    return build_extractive(settings, embedder)
