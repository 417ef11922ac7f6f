"""The Lindehoven hospital development set: its questions, its split, and how an answer is judged.

The set lives in ``benchmarks/data/hospital/`` (protocols in ``docs/``, their Markdown sources in
``src/``, built by ``benchmarks/data/make_hospital.py``; questions in ``questions.json``; licence in
``LICENSE.md``). ``benchmarks/trust.py`` asks the questions; this module only reads and judges.

An answer *states the fact* when every entry of ``answer_facts`` occurs in it after normalisation
(NFKC, lower case, every dash as ``-``, decimal comma as point, ``|`` and ``*`` dropped, whitespace
collapsed) as a whole word; an entry that is a list is met by any one of its strings.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SET_DIR = Path(__file__).resolve().parent / "data" / "hospital"
DOCS_DIR = SET_DIR / "docs"
SRC_DIR = SET_DIR / "src"
QUESTIONS = SET_DIR / "questions.json"

Kind = Literal["fact", "table", "procedure", "cross-language", "unanswerable"]
Split = Literal["dev", "test"]
KINDS: tuple[Kind, ...] = ("fact", "table", "procedure", "cross-language", "unanswerable")
ANSWERABLE_KINDS: tuple[Kind, ...] = KINDS[:4]

Fact = str | tuple[str, ...]


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    kind: Kind
    language: str
    expected_docs: tuple[str, ...]  # file names under docs/; any one cited counts
    answer_facts: tuple[Fact, ...]
    split: Split

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


class SetError(ValueError):
    """The questions file breaks the set's rules."""


def load_questions(
    path: Path = QUESTIONS, split: Split | None = None, kinds: Iterable[str] | None = None
) -> list[Question]:
    """The set's questions (all, or one split / some kinds), validated; raises SetError on a bad file."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    out: list[Question] = []
    seen: set[str] = set()
    for item in raw["questions"]:
        qid = str(item["id"])
        if qid in seen:
            raise SetError(f"{qid}: duplicate id")
        seen.add(qid)
        kind = item["kind"]
        if kind not in KINDS:
            raise SetError(f"{qid}: unknown kind {kind!r}")
        if item["split"] not in ("dev", "test"):
            raise SetError(f"{qid}: split must be dev or test")
        facts = tuple(tuple(f) if isinstance(f, list) else str(f) for f in item.get("answer_facts", []))
        if (kind == "unanswerable") != (not facts):
            raise SetError(f"{qid}: answerable questions need answer_facts, unanswerable ones none")
        docs = tuple(item["expected_docs"])
        if not docs:
            raise SetError(f"{qid}: expected_docs is empty")
        out.append(Question(qid, item["question"], kind, item.get("language", "nl"), docs, facts, item["split"]))
    wanted = set(kinds) if kinds is not None else None
    return [q for q in out if (split is None or q.split == split) and (wanted is None or q.kind in wanted)]


def split_rule(questions: Sequence[Question]) -> dict[str, Split]:
    """The stated split: within each kind, questions ``q…`` in id order alternate dev, test, dev, …;
    questions ``d…`` (more development questions, written after the test split had been run) are dev."""
    counts: dict[str, int] = {}
    rule: dict[str, Split] = {}
    for q in sorted(questions, key=lambda q: q.id):
        if q.id.startswith("d"):
            rule[q.id] = "dev"
            continue
        n = counts.get(q.kind, 0)
        counts[q.kind] = n + 1
        rule[q.id] = "dev" if n % 2 == 0 else "test"
    return rule


_DASHES = re.compile(r"[\u2010\u2011\u2012\u2013\u2014\u2015\u2212]")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d)")
_DROP = re.compile(r"[|*_`]")


def normalise(text: str) -> str:
    """Text in the form answer facts are written in (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _DASHES.sub("-", text)
    text = _DECIMAL_COMMA.sub(".", text)
    text = _DROP.sub(" ", text)
    return " ".join(text.split())


def fact_found(answer: str, fact: Fact) -> bool:
    """Whether one fact (or one of its alternatives) occurs in the answer as whole words."""
    alts = (fact,) if isinstance(fact, str) else fact
    norm = normalise(answer)
    return any(re.search(r"(?<!\w)" + re.escape(normalise(a)) + r"(?!\w)", norm) for a in alts)


def states_facts(answer: str, facts: Iterable[Fact]) -> bool:
    """Whether the answer states every expected fact (False when there are none to state)."""
    facts = list(facts)
    return bool(facts) and all(fact_found(answer, f) for f in facts)


def doc_names() -> list[str]:
    """The file names of the set's published documents."""
    return sorted(p.name for p in DOCS_DIR.iterdir() if p.is_file())
