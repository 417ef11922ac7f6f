"""Citation markers: keep only ``[n]`` that point at a retrieved source, also while streaming."""

from __future__ import annotations

import re

from retrieval.analysis import tokenize
from vraagbaak_core.types import Citation, Hit

MARKER = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
_MAX_MARKER = 24  # longest text held back while a "[" may still open a marker


def clean_markers(text: str, n_sources: int) -> tuple[str, list[int]]:
    """Drop marker numbers outside 1..n_sources; return the text and the cited numbers in order."""
    cited: list[int] = []

    def fix(m: re.Match[str]) -> str:
        nums = [int(x) for x in re.split(r"[,;]", m.group(1))]
        valid = [n for n in nums if 1 <= n <= n_sources]
        for n in valid:
            if n not in cited:
                cited.append(n)
        return "[" + ", ".join(str(n) for n in valid) + "]" if valid else ""

    return MARKER.sub(fix, text), cited


class MarkerFilter:
    """Streaming version of :func:`clean_markers`: holds back text only while a marker may be open."""

    def __init__(self, n_sources: int) -> None:
        self.n_sources = n_sources
        self.cited: list[int] = []
        self._buf = ""

    def feed(self, delta: str) -> str:
        self._buf += delta
        out = []
        while self._buf:
            start = self._buf.find("[")
            if start < 0:
                out.append(self._buf)
                self._buf = ""
                break
            out.append(self._buf[:start])
            self._buf = self._buf[start:]
            end = self._buf.find("]")
            if end < 0:
                if len(self._buf) > _MAX_MARKER or not re.fullmatch(r"\[[\d\s,;]*", self._buf):
                    out.append(self._buf[0])
                    self._buf = self._buf[1:]
                    continue
                break  # wait for more text
            out.append(self._clean(self._buf[: end + 1]))
            self._buf = self._buf[end + 1 :]
        return "".join(out)

    def _clean(self, piece: str) -> str:
        cleaned, cited = clean_markers(piece, self.n_sources)
        for n in cited:
            if n not in self.cited:
                self.cited.append(n)
        return cleaned

    def finish(self) -> str:
        rest, self._buf = self._buf, ""
        return self._clean(rest)


def _content_words(text: str) -> set[str]:
    """Words that carry content: numbers (times, doses, codes) and words of 5+ letters, folded."""
    return {w for w in tokenize(text) if len(w) >= 5 or any(ch.isdigit() for ch in w)}


def attribute(answer: str, hits: list[Hit], min_shared: int = 2) -> list[int]:
    """Sources (1-based) whose content words the answer reuses, best first.

    Used only when the model cited nothing: a source counts when it shares at least
    ``min_shared`` content words with the answer and at least half as many as the best one.
    """
    words = _content_words(answer)
    if not words:
        return []
    shared = [(len(words & _content_words(h.chunk.text + " " + h.chunk.title)), i + 1) for i, h in enumerate(hits)]
    best = max(n for n, _ in shared)
    if best < min_shared:
        return []
    return [i for n, i in sorted(shared, key=lambda t: (-t[0], t[1])) if n >= min_shared and 2 * n >= best]


def build_citations(
    cited: list[int], hits: list[Hit], method: str = "marker", snippet_chars: int = 240
) -> list[Citation]:
    out = []
    for n in cited:
        c = hits[n - 1].chunk
        snippet = " ".join(c.text.split())
        if len(snippet) > snippet_chars:
            snippet = snippet[: snippet_chars - 1].rsplit(" ", 1)[0] + "…"
        out.append(
            Citation(
                n=n, doc_id=c.doc_id, title=c.title, chunk_id=c.chunk_id, score=hits[n - 1].score,
                snippet=snippet, page=c.page, section=c.section, source=c.source, method=method,
                control=c.control,
            )
        )
    return out
