"""Prompt templates from ``configs/prompts/<lang>.yaml`` and source sanitising.

Text inside retrieved documents is data, never instructions: chat-template control
tokens are stripped, the source delimiters cannot be closed from inside a source, and
sentences that try to instruct the model are redacted before the model sees them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from vraagbaak_core.types import Hit

# Chat-template control tokens of the common model families (ChatML, Llama 2/3, Gemma, Mistral,
# Alpaca-style headers), and bare role tags.
_CONTROL_TOKENS = re.compile(
    r"<\|[^|>\n]{1,40}\|>|</?s>|\[/?INST\]|<</?SYS>>|</?(?:start|end)_of_turn>|<\|?(?:begin|end)_of_text\|?>"
    r"|</?(?:system|assistant|user|im_start|im_end|tool)>|#{2,}\s*(?:instructions?|system|response|input)\b:?",
    re.IGNORECASE,
)
# A source may not open what looks like another numbered source: "[3] ..." anywhere inside a field.
_FAKE_SOURCE = re.compile(r"\[\s*(\d{1,4})\s*\]")
# Role and prompt-section labels ("Vraag:", "System:") that would fake the end of the sources.
_ROLE_LABEL = re.compile(
    r"\b(system|systeem|assistant|assistent|user|gebruiker|vraag|antwoord|bronnen|question|answer|sources)\s*:",
    re.IGNORECASE,
)
# Zero-width and bidi-control characters, used to hide an instruction from a filter.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\U000e0000-\U000e007f]")
_INSTRUCTION_PATTERNS = (
    # English
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,60}"
    r"\b(?:instructions?|rules|prompts?|guidelines|above|previous|prior|earlier|everything|context|sources)\b",
    r"\bfrom now on\b", r"\bhenceforth\b", r"\bobey\b", r"\bgehoorzaam\b",
    r"\byou are (?:now|no longer)\b", r"\bact as (?:an?|the|my)\b",
    r"\bpretend (?:to be|you)\b", r"\brole-?play\b", r"\bnew (?:instructions?|rules for you|task|role)\b",
    r"\b(?:system|developer) (?:prompt|message|mode)\b",
    r"\b(?:respond|answer|reply)\b[^.!?\n]{0,20}\b(?:only|nothing but|exclusively)\b",
    r"\b(?:reveal|print|repeat|show|output)\b[^.!?\n]{0,30}\b(?:your|the) (?:prompt|instructions)\b",
    r"\binstead\b[^.!?\n]{0,20}\b(?:say|answer|reply|respond|tell)\b",
    r"\b(?:the|an?) (?:assistant|model|ai|chatbot)\b[^.!?\n]{0,20}\b(?:must|should|will|may)\b",
    # Dutch
    r"\b(?:negeer|omzeil|overschrijf|passeer)\b[^.!?\n]{0,60}"
    r"\b(?:instructies?|opdrachten?|regels|prompts?|richtlijnen|hierboven|bovenstaande|eerdere|vorige|alles|"
    r"context|bronnen)\b",
    r"\bvergeet\b[^.!?\n]{0,60}\b(?:instructies?|opdrachten?|prompts?|richtlijnen|hierboven|bovenstaande)\b",
    r"\b(?:vanaf nu|voortaan|van nu af aan)\b[^.!?\n]{0,40}"
    r"\b(?:antwoord|zeg|reageer|ben je|ben jij|spreek|schrijf|praat)\b",
    r"\b(?:je|jij) bent (?:nu|voortaan|vanaf nu|niet langer|geen assistent)\b", r"\bdoe alsof\b",
    r"\bspeel (?:de|een) rol\b", r"\bgedraag je als\b", r"\bneem de rol\b",
    r"\bnieuwe (?:instructies?|opdracht voor)\b", r"\bsysteem(?:prompt|bericht|instructie)s?\b",
    r"\bontwikkelaarsmodus\b",
    r"\b(?:antwoord|reageer)\b[^.!?\n]{0,20}\b(?:alleen|uitsluitend|enkel|slechts|voortaan)\b[^.!?\n]{0,20}"
    r"\b(?:met|in|nog)\b",
    r"\b(?:toon|geef|herhaal|print)\b[^.!?\n]{0,30}\b(?:je|jouw|de) (?:instructies|prompt|opdracht)\b",
    r"\bin plaats daarvan\b[^.!?\n]{0,30}\b(?:antwoord|zeg|schrijf)\b",
    r"\b(?:de assistent|het model|de ai|de chatbot)\b[^.!?\n]{0,20}\b(?:moet|mag|zal)\b",
)
# The sentence holding an instruction, and a short imperative right after it ("... Say X.").
_INJECTION = re.compile(
    r"[^.!?\n]*(?:" + "|".join(_INSTRUCTION_PATTERNS) + r")[^.!?\n]*[.!?]?"
    r"(?:\s*[^.!?\n]{0,30}\b(?:say|answer|reply|write|print|zeg|antwoord|schrijf|meld|noem)\b[^.!?\n]{0,60}[.!?]?)?",
    re.IGNORECASE,
)


def looks_like_instruction(text: str) -> bool:
    """Whether ``text`` holds a sentence that tries to instruct a model (redacted in prompts)."""
    return _INJECTION.search(text) is not None


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
    # after an abstention because the sources do not answer: the nearest documents' titles
    maybe_relevant: str = "Possibly relevant: {titles}."

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
            where += self.where_section.format(section=self.sanitise_field(c.section))
        if c.page is not None:
            where += self.where_page.format(page=c.page)
        text = " ".join(self.sanitise(c.text).split())
        return self.source.format(n=n, title=self.sanitise_field(c.title), where=where, text=text)

    def render_user(self, hits: list[Hit], question: str) -> str:
        sources = "\n".join(self.render_source(i + 1, h) for i, h in enumerate(hits))
        return self.user.format(sources=sources, question=question.strip())

    def sanitise(self, text: str) -> str:
        """Document text as data: no control tokens, no fake source numbers or prompt labels, and
        sentences that try to instruct the model replaced by the redaction marker."""
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
        text = _CONTROL_TOKENS.sub(" ", text)
        text = _FAKE_SOURCE.sub(r"(\1)", text)
        text = _ROLE_LABEL.sub(r"\1 -", text)
        return _INJECTION.sub(" " + self.redacted, text)

    def sanitise_field(self, value: str) -> str:
        """A title or heading: sanitised like text, on one line, at most 200 characters."""
        return _oneline(self.sanitise(value))


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
