"""The factory of the ``AnswerabilityJudge`` port: whether the retrieved sources answer at all."""

from __future__ import annotations

from vraagbaak_core.ports import AnswerabilityJudge, Generator
from vraagbaak_core.settings import Settings


def build_judge(settings: Settings, generator: Generator) -> AnswerabilityJudge | None:
    """The extractive answerer's answerability (``generator.extractive.min_answerability``, chosen on the
    hospital dev split for the extractive answerer), when the extractive answerer is the generator.
    A language model gets its sources as before (its prompt says to say so when they do not answer);
    None when the threshold is 0."""
    if settings.generator.extractive.min_answerability <= 0.0:
        return None
    return generator if isinstance(generator, AnswerabilityJudge) else None
