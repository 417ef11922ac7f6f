"""The factory of the ``AnswerabilityJudge`` port: whether the retrieved sources answer at all."""

from __future__ import annotations

from vraagbaak_core.ports import AnswerabilityJudge, Embedder, Generator
from vraagbaak_core.settings import Settings


def build_judge(
    settings: Settings, embedder: Embedder | None, generator: Generator, fallback: Generator | None
) -> AnswerabilityJudge | None:
    """The extractive answerer's answerability (``generator.extractive.min_answerability``), for every
    generator: a language model is not asked when no source unit answers. None when the threshold is 0
    or there is no embedder to score with."""
    if settings.generator.extractive.min_answerability <= 0.0:
        return None
    for g in (generator, fallback):
        if isinstance(g, AnswerabilityJudge):
            return g
    if embedder is None:
        return None
    from serving.generators.extractive import ExtractiveGenerator

    return ExtractiveGenerator.from_settings(settings, embedder)
