"""Prompt templates from ``configs/prompts/<lang>.yaml`` and source sanitising.

Text inside retrieved documents is data, never instructions: chat-template control
tokens are stripped, the source delimiters cannot be closed from inside a source, and
sentences that try to instruct the model are redacted before the model sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from vraagbaak_core.types import Hit

_CONTROL_TOKENS = re.compile(r"<\|[^|>]{1,40}\|>|</?s>|\[/?INST\]|<<\/?SYS>>", re.IGNORECASE)
# A source may not open what looks like another numbered source: "[3] ..." inside a text.
_FAKE_SOURCE = re.compile(r"(^|\n)\s*\[(\d+)\]")
_INJECTION = re.compile(
    r"[^.!?\n]*(?:"
    r"\b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,60}\b(?:instructions?|rules|prompts?|guidelines)\b"
    r"|\b(?:negeer|vergeet|omzeil|overschrijf)\b[^.!?\n]{0,60}\b(?:instructies?|opdrachten?|regels|prompts?|richtlijnen)\b"
    r"|\byou are now\b|\bje bent nu\b|\bsystem prompt\b|\bsysteemprompt\b"
    r")[^.!?\n]*[.!?]?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PromptTemplate:
    language: str
    system: str
    user: str
    source: str
    where_page: str
    where_section: str
    abstain: str
    redacted: str
    # document control: a cited document past its review date (issue 13)
    overdue: str = "Note: this protocol should have been reviewed on {date}."
    overdue_named: str = 'Note: the protocol "{title}" should have been reviewed on {date}.'
    months: str = "January,February,March,April,May,June,July,August,September,October,November,December"

    def long_date(self, iso: str) -> str:
        """``2026-03-01`` → ``1 maart 2026`` (the month names of this language)."""
        names = [m.strip() for m in self.months.split(",")]
        y, m, d = (int(x) for x in iso[:10].split("-"))
        return f"{d} {names[m - 1]} {y}" if len(names) == 12 else iso[:10]

    def overdue_notice(self, overdue: list[tuple[str, str]]) -> str:
        """One line per (title, review date) of cited documents whose review is overdue."""
        if len(overdue) == 1:
            return self.overdue.format(date=self.long_date(overdue[0][1]), title=_oneline(overdue[0][0]))
        return "\n".join(
            self.overdue_named.format(date=self.long_date(d), title=_oneline(t)) for t, d in overdue
        )

    def render_source(self, n: int, hit: Hit) -> str:
        c = hit.chunk
        where = ""
        if c.section:
            where += self.where_section.format(section=_oneline(c.section))
        if c.page is not None:
            where += self.where_page.format(page=c.page)
        text = " ".join(self.sanitise(c.text).split())
        return self.source.format(n=n, title=_oneline(c.title), where=where, text=text)

    def render_user(self, hits: list[Hit], question: str) -> str:
        sources = "\n".join(self.render_source(i + 1, h) for i, h in enumerate(hits))
        return self.user.format(sources=sources, question=question.strip())

    def sanitise(self, text: str) -> str:
        text = _CONTROL_TOKENS.sub(" ", text)
        text = _FAKE_SOURCE.sub(r"\1(\2)", text)
        return _INJECTION.sub(" " + self.redacted, text)


def _oneline(value: str) -> str:
    return " ".join(value.split())[:200]


class PromptBook:
    """Templates per language; the answer follows the language of the question."""

    def __init__(self, templates: dict[str, PromptTemplate], default_language: str) -> None:
        if default_language not in templates:
            raise ValueError(f"no prompt template for default language {default_language!r}")
        self.templates = templates
        self.default_language = default_language

    @classmethod
    def load(cls, directory: Path, default_language: str) -> PromptBook:
        templates: dict[str, PromptTemplate] = {}
        for path in sorted(directory.glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            t = PromptTemplate(**{k: str(data[k]) for k in PromptTemplate.__dataclass_fields__ if k in data})
            templates[t.language] = t
        if not templates:
            raise FileNotFoundError(f"no prompt templates (*.yaml) in {directory}")
        return cls(templates, default_language)

    def for_language(self, language: str) -> PromptTemplate:
        return self.templates.get(language, self.templates[self.default_language])
