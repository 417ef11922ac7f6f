"""Build the answer-check set: faithful answers, faithful paraphrases, and answers with one fact changed.

    .venv/bin/python benchmarks/data/make_answer_check.py          # writes benchmarks/data/answer_check.jsonl

Deterministic (no randomness, no model): the same documents give the same set, byte for byte.

Documents: the Lindehoven hospital set (``benchmarks/data/hospital/docs``: 14 protocols, MD/HTML/PDF/
DOCX, 12 Dutch and 2 English) and ``examples/docs``, each parsed by the product's loaders
(``ingest.loaders.parse``), so a source is the text the answerer would see (tables as Markdown rows).

For every sentence of a document with at least five content words (split by the checker's own
source splitter; headings and table header rows are left out), the *source* is that sentence with
up to three sentences before and after it in the same document (about one chunk), and the answer
items are:

- ``faithful``: the sentence verbatim, with its marker;
- ``paraphrase``: the same facts written differently, when one of these applies (all that apply,
  in this order): a number of 1-20 spelled out ("2 uur" -> "twee uur") or a spelled number written
  in digits; a unit written another way ("seconden" -> "sec", "minuten" -> "min", "mg" ->
  "milligram", "%" -> " procent", "uur" -> "u" …); a decimal comma as a point; a clause moved
  ("A, B." -> "B, A." at the first comma with at least four words each side);
- ``number``: one number changed (n -> n+1, n+2, 2n or n+10, the first that does not occur in the
  source; a clock time one hour later; a number word to the next one);
- ``unit``: one unit changed to another of the same kind of measure ("mg" -> "g", "seconden" ->
  "minuten", "per uur" -> "per dag", "ml" -> "l" …);
- ``negation``: one negation removed ("geen"/"niet"/"not"/"no" dropped, "nooit" -> "altijd",
  "never" -> "always"), or, in a sentence without one, "niet"/"not" put after the first finite verb
  of a short list ("is", "zijn", "wordt", "mag", "moet", "kan", "must", "should", "can" …);
- ``actor``: one person or extension changed ("verpleegkundige" <-> "arts", "nurse" <-> "doctor",
  "patiënt" -> "bezoeker", "apotheek" -> "arts" …; "toestel 4512" -> "toestel 4513").

A perturbed item is made only where its kind applies to the sentence, once per sentence and kind.
Split: an item is **dev** when the first byte of sha256(item id) is even, **test** otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ingest.loaders import parse  # noqa: E402
from retrieval.analysis import detect_language  # noqa: E402
from serving.staff.answer_check.check import STOPWORDS, split_source  # noqa: E402
from serving.staff.answer_check.facts import content_words  # noqa: E402

OUT = ROOT / "benchmarks" / "data" / "answer_check.jsonl"
DOC_SETS = (("hospital", ROOT / "benchmarks" / "data" / "hospital" / "docs"), ("examples", ROOT / "examples" / "docs"))
CONTEXT = 3
KINDS = ("faithful", "paraphrase", "number", "unit", "negation", "actor")

NL_NUMBERS = ["nul", "een", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen", "tien", "elf", "twaalf",
              "dertien", "veertien", "vijftien", "zestien", "zeventien", "achttien", "negentien", "twintig"]
EN_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
              "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
UNIT_PARAPHRASE = [("seconden", "sec"), ("minuten", "min"), ("milligram", "mg"), ("mg", "milligram"),
                   ("ml", "milliliter"), ("uur", "u"), ("%", " procent"), ("seconds", "sec"), ("minutes", "min"),
                   ("hours", "h"), ("mmol/l", "mmol per liter"), ("dagen", "dgn"), ("eenheden", "IE"),
                   ("units", "IU"), ("kg", "kilogram"), ("°C", " graden")]
UNIT_CHANGE = [("mg", "g"), ("g", "mg"), ("mcg", "mg"), ("microgram", "milligram"), ("ml", "l"), ("liter", "ml"),
               ("seconden", "minuten"), ("minuten", "uur"), ("minuut", "uur"), ("uur", "minuten"), ("uren", "dagen"),
               ("dagen", "weken"), ("dag", "week"), ("weken", "maanden"), ("week", "maand"), ("maanden", "jaar"),
               ("jaar", "maanden"), ("seconds", "minutes"), ("minutes", "hours"), ("hours", "days"),
               ("hour", "day"), ("days", "weeks"), ("day", "week"), ("kg", "g"), ("mmol", "mg"), ("eenheden", "mg"),
               ("units", "mg"), ("IE", "mg"), ("%", " mg"), ("cm", "mm"), ("mm", "cm"), ("°C", " °F")]
NEGATION_CHANGE = [("nooit", "altijd"), ("never", "always"), ("geen ", ""), ("niet ", ""), ("not ", ""),
                   ("no ", ""), ("Geen ", ""), ("Niet ", ""), ("No ", ""), ("Never ", "Always "), ("Nooit ", "Altijd ")]
FINITE_NL = ["is", "zijn", "wordt", "worden", "mag", "mogen", "moet", "moeten", "kan", "kunnen", "heeft", "hebben",
             "komt", "komen", "gaat", "blijft", "blijven"]
FINITE_EN = ["is", "are", "must", "should", "can", "may", "will", "was", "were"]
ACTOR_CHANGE = [("verpleegkundigen", "artsen"), ("verpleegkundige", "arts"), ("artsen", "verpleegkundigen"),
                ("arts", "verpleegkundige"), ("nurses", "doctors"), ("nurse", "doctor"), ("doctors", "nurses"),
                ("doctor", "nurse"), ("physician", "nurse"), ("apotheek", "arts"), ("apotheker", "arts"),
                ("pharmacy", "ward"), ("pharmacist", "nurse"), ("specialist", "huisarts"), ("team", "arts"),
                ("patiënt", "bezoeker"), ("patient", "visitor"), ("bezoekers", "patiënten"), ("partners", "kinderen"),
                ("teamleider", "arts"), ("fysiotherapeut", "diëtist"), ("diëtist", "fysiotherapeut"),
                ("anesthesioloog", "chirurg"), ("kinderarts", "huisarts"), ("mantelzorger", "verpleegkundige"),
                ("familie", "verpleegkundige")]
_NUM = re.compile(r"(?<![\w.,:])(\d+)(?:([.,])(\d+))?(?![\w:]|[.,]\d)")
_CLOCK = re.compile(r"(?<!\d)(\d{1,2})([:.])(\d{2})(?=\s*(?:uur|u\b|h\b|-|–|tot|to\b|\)|,|\.|$|\s))")


def split_of(item_id: str) -> str:
    return "dev" if hashlib.sha256(item_id.encode()).digest()[0] % 2 == 0 else "test"


def _word_sub(sentence: str, old: str, new: str) -> str | None:
    """``sentence`` with the first whole-word ``old`` replaced, or None."""
    if old.strip() in ("%", "°C", "mmol/l"):
        pat = re.compile(r"(?<=\d)\s?" + re.escape(old.strip()))
    else:
        pat = re.compile(r"(?<![\w-])" + re.escape(old.strip()) + r"(?![\w-])")
    m = pat.search(sentence)
    if not m:
        return None
    rep = new if not old.endswith(" ") else new
    out = sentence[: m.start()] + rep.rstrip() + sentence[m.end():]
    if old.endswith(" ") and not new:
        out = sentence[: m.start()] + sentence[m.end():].lstrip()
    return re.sub(r"\s{2,}", " ", out)


def _numbers_in(text: str) -> set[str]:
    return {m.group(0).replace(",", ".") for m in re.finditer(r"\d+(?:[.,]\d+)?", text)}


def change_number(sentence: str, source: str) -> tuple[str, str] | None:
    m = _CLOCK.search(sentence)
    if m and int(m.group(1)) <= 23:
        new = f"{(int(m.group(1)) + 1) % 24:02d}{m.group(2)}{m.group(3)}"
        if new not in source:
            return sentence[: m.start()] + new + sentence[m.end():], f"{m.group(0)} -> {new}"
    for m in _NUM.finditer(sentence):
        whole, sep, frac = m.group(1), m.group(2), m.group(3)
        if sep and frac and len(frac) == 3:
            continue  # a thousands separator: leave it
        have = _numbers_in(source)
        base = float(f"{whole}.{frac}") if frac else float(whole)
        for cand in (base + 1, base + 2, base * 2, base + 10):
            text = (f"{cand:.{len(frac)}f}".replace(".", sep) if frac else str(int(cand)))
            if text.replace(",", ".") not in have:
                return sentence[: m.start()] + text + sentence[m.end():], f"{m.group(0)} -> {text}"
    for i, w in enumerate(NL_NUMBERS[2:12] + EN_NUMBERS[2:12]):
        words = NL_NUMBERS if i < 10 else EN_NUMBERS
        got = _word_sub(sentence, w, words[words.index(w) + 1])
        if got and got != sentence:
            return got, f"{w} -> {words[words.index(w) + 1]}"
    return None


def paraphrase(sentence: str) -> tuple[str, list[str]] | None:
    out, ops = sentence, []
    m = re.search(r"(?<![\w.,:])([1-9]|1\d|20)(?![\w.,:]|[.,]\d)(?=\s+[a-zA-Zµ%])", out)
    if m and not _CLOCK.match(out, m.start()):
        words = EN_NUMBERS if detect_language(out) == "en" else NL_NUMBERS
        out = out[: m.start()] + words[int(m.group(1))] + out[m.end():]
        ops.append(f"{m.group(1)} -> {words[int(m.group(1))]}")
    for old, new in UNIT_PARAPHRASE:  # a unit right after a number only
        um = re.search(r"(?<=\d)(\s?)" + re.escape(old.strip()) + (r"(?![\w])" if old[-1].isalnum() else ""), out)
        if um:
            out = out[: um.start()] + (um.group(1) if not new.startswith(" ") else "") + new + out[um.end():]
            ops.append(f"{old.strip()} -> {new.strip()}")
            break
    m = re.search(r"(?<=\d),(?=\d{1,2}\b)", out)
    if m:
        out = out[: m.start()] + "." + out[m.end():]
        ops.append("decimal comma -> point")
    parts = out.rstrip(".").split(", ", 1)
    if len(parts) == 2 and len(parts[0].split()) >= 4 and len(parts[1].split()) >= 4 and "|" not in out \
            and ";" not in out:
        a, b = parts
        out = f"{b[0].upper()}{b[1:]}, {a[0].lower()}{a[1:]}."
        ops.append("clauses swapped")
    return (out, ops) if ops and out != sentence else None


def change_unit(sentence: str) -> tuple[str, str] | None:
    for old, new in UNIT_CHANGE:
        if old.strip() in ("%", "°C"):
            m = re.search(r"(?<=\d)\s?" + re.escape(old.strip()), sentence)
        else:
            m = re.search(r"(?<=\d)\s?" + re.escape(old) + r"(?![\w])", sentence) or re.search(
                r"(?<=\bper )" + re.escape(old) + r"(?![\w])", sentence)
        if m:
            space = " " if not new.startswith(" ") else ""
            return sentence[: m.start()] + space + new.strip() + sentence[m.end():], f"{old.strip()} -> {new.strip()}"
    return None


def change_negation(sentence: str) -> tuple[str, str] | None:
    for old, new in NEGATION_CHANGE:
        pat = re.compile(r"(?<![\w-])" + re.escape(old))
        m = pat.search(sentence)
        if m:
            out = sentence[: m.start()] + new + sentence[m.end():]
            if old[0].isupper() and out[:1].islower():
                out = out[0].upper() + out[1:]
            return re.sub(r"\s{2,}", " ", out), f"removed '{old.strip()}'" + (f" -> '{new.strip()}'" if new else "")
    english = detect_language(sentence) == "en"
    for verb in (FINITE_EN if english else FINITE_NL):
        m = re.search(rf"\b{verb}\b", sentence)
        if m:
            word = "not" if english else "niet"
            return sentence[: m.end()] + f" {word}" + sentence[m.end():], f"added '{word}' after '{verb}'"
    return None


def change_actor(sentence: str) -> tuple[str, str] | None:
    m = re.search(r"\b((?:toestel|tst\.|sein|extension|ext\.|bleep)\s*)(\d{3,6})\b", sentence, re.IGNORECASE)
    if m:
        new = str(int(m.group(2)) + 1)
        return sentence[: m.start(2)] + new + sentence[m.end(2):], f"{m.group(0)} -> {m.group(1)}{new}"
    for old, new in ACTOR_CHANGE:
        for o, n in ((old, new), (old.capitalize(), new.capitalize())):
            m = re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", sentence)
            if m:
                return sentence[: m.start()] + n + sentence[m.end():], f"{o} -> {n}"
    return None


def documents() -> Iterator[tuple[str, str]]:
    for set_name, folder in DOC_SETS:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix.lower() not in (".md", ".html", ".pdf", ".docx", ".txt"):
                continue
            doc = parse(path.read_bytes(), path.name)
            yield f"{set_name}/{path.relative_to(folder)}", doc.text


def items() -> Iterator[dict[str, object]]:
    makers: dict[str, Callable[[str, str], tuple[str, str] | None]] = {
        "number": change_number,
        "unit": lambda s, src: change_unit(s),
        "negation": lambda s, src: change_negation(s),
        "actor": lambda s, src: change_actor(s),
    }
    for doc, text in documents():
        sentences = split_source(text)
        for i, sentence in enumerate(sentences):
            header_row = sentence.count(";") >= 3 and not re.search(r"\d", sentence)
            if len(content_words(sentence, STOPWORDS)) < 5 or header_row:
                continue  # headings, table header rows
            source = "\n\n".join(sentences[max(0, i - CONTEXT): i + CONTEXT + 1])
            base = f"{doc}#{i}"
            yield {"id": f"{base}:faithful", "doc": doc, "kind": "faithful", "answer": f"{sentence} [1]",
                   "source": source, "change": None}
            para = paraphrase(sentence)
            if para:
                yield {"id": f"{base}:paraphrase", "doc": doc, "kind": "paraphrase", "answer": f"{para[0]} [1]",
                       "source": source, "change": "; ".join(para[1])}
            for kind, make in makers.items():
                got = make(sentence, source)
                if got and got[0] != sentence:
                    yield {"id": f"{base}:{kind}", "doc": doc, "kind": kind, "answer": f"{got[0]} [1]",
                           "source": source, "change": got[1]}


def build(out: Path = OUT) -> int:
    rows = [{**item, "split": split_of(str(item["id"]))} for item in items()]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


if __name__ == "__main__":
    n = build()
    print(f"{n} items -> {OUT.relative_to(ROOT)}")
