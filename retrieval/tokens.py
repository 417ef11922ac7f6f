"""Word tokens as the sparse analysis and the care terms see them: lowercased, diacritics folded."""

from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """Lowercase and strip diacritics: NFKD, then drop combining marks."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokenize(text: str) -> list[str]:
    """Folded word tokens; single letters are dropped, single digits kept."""
    return [t for t in WORD.findall(fold(text)) if len(t) > 1 or t.isdigit()]
