"""SmolLM2 (``generator.backend: transformers``) with its repetition guard, on the real model.

The question below makes greedy SmolLM2-135M echo itself until max_tokens (the loop issue 10
quotes); with ``no_repeat_ngram_size`` the same request never repeats a 4-word span.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vraagbaak_core.settings import load_settings
from vraagbaak_core.types import ChatMessage, GenerationParams

pytestmark = pytest.mark.slow

LOOPING = [ChatMessage("user", "Hoe lang wordt het patiëntendossier bewaard? Antwoord in het Nederlands.")]


def repeated_spans(text: str, n: int = 4) -> int:
    words = text.lower().split()
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        repeats += gram in seen
        seen.add(gram)
    return repeats


def test_the_guard_is_on_by_default() -> None:
    g = load_settings().generator
    assert g.no_repeat_ngram_size == 4 and g.repetition_penalty > 1.0


def test_repetition_guard_stops_the_loop_of_the_real_model(generator: Any) -> None:
    params = GenerationParams(max_tokens=40)
    saved = generator.no_repeat_ngram_size, generator.repetition_penalty
    try:
        generator.no_repeat_ngram_size, generator.repetition_penalty = 0, 1.0
        unguarded = asyncio.run(generator.generate(LOOPING, params))
        generator.no_repeat_ngram_size = 4
        guarded = asyncio.run(generator.generate(LOOPING, params))
    finally:
        generator.no_repeat_ngram_size, generator.repetition_penalty = saved
    assert repeated_spans(unguarded) >= 3, unguarded  # the prompt does provoke the loop
    assert guarded.strip() and repeated_spans(guarded) == 0, guarded
