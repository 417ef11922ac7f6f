"""Answer check: do the extractive answer's cited sentences come from the relevant document?

    nice -n 10 .venv/bin/python benchmarks/answers.py                 # examples/docs and the Dutch set
    .venv/bin/python benchmarks/answers.py --sets examples --limit 5  # a quick look

The product path, with the default settings: every set is ingested into its own temporary Edge
store by the real ``Ingestor`` (default embedder, chunker, patient-data guard), and every question
goes through ``ChatService.prepare`` / ``ChatService.answer`` as the API calls them, with the
default generator (the extractive answerer). Nothing is tuned here.

Sets:
- ``examples``: ``examples/docs`` with the hand-written Dutch questions in
  ``benchmarks/data/examples_questions.json`` (each names the document that answers it);
  asked as a staff member of group ``iedereen`` with clearance ``intern``.
- ``nl_lohelp``: the Dutch BEIR set built by ``benchmarks/data/make_nl_lohelp.py`` (built on demand
  into ``.cache/bench/nl_lohelp``); each corpus document is one text file, a query's relevant
  documents are its qrels. The questions are those of the test split of ``benchmarks/retrieval.py``
  (``split_of``: the parity of the first byte of sha256(query id); ``--split dev|all`` for the
  others), in the order of a hash of their id, so ``--limit N`` takes a sample across the help's
  modules. Ctrl-C while asking stops and reports the questions asked so far.

Per set it prints: questions, answered, abstained, precision@answer (cited sentences whose source
is a relevant document, over all cited sentences of the answered questions), the share of answers
whose every cited sentence is relevant, the share of answers with a relevant document among their
sources, mean/median answer length in words and in sentences, and p50/p90 time per answer
(retrieval and answering, the embedder warm). ``--write`` puts the table under "## Answers" in
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.data.make_nl_lohelp import DEFAULT_OUT as NL_DIR  # noqa: E402
from benchmarks.data.make_nl_lohelp import ensure_built  # noqa: E402
from benchmarks.retrieval import split_of  # noqa: E402
from ingest.manifest import Labels  # noqa: E402
from serving.components import Components, build_components  # noqa: E402
from vraagbaak_core.settings import Settings, load_settings  # noqa: E402
from vraagbaak_core.types import Answer, ChatMessage, GenerationParams, Identity  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
EXAMPLES = ROOT / "examples" / "docs"
EXAMPLE_QUESTIONS = ROOT / "benchmarks" / "data" / "examples_questions.json"
GROUPS = ("iedereen",)  # the access group the sets are ingested with (the manifest of examples/docs adds its own)
STAFF = Identity("bench", frozenset({"staff"}), frozenset({"iedereen"}), "intern", "bench")
PARAMS = GenerationParams(max_tokens=300)
# One marked sentence of an extractive answer: its text, then " [n]" or " [n, m]", then its punctuation.
MARKED = re.compile(r"(.+?)\s\[(\d+(?:\s*,\s*\d+)*)\]([.!?…:;]*)(?=\s|$)", re.S)


@dataclass
class Question:
    qid: str
    text: str
    relevant: set[str]  # paths relative to the ingested directory


@dataclass
class Outcome:
    abstained: bool
    cited: int = 0  # cited sentences
    relevant: int = 0  # of which from a relevant document
    words: int = 0
    sentences: int = 0
    relevant_in_sources: bool = False
    seconds: float = 0.0
    text: str = ""


@dataclass
class SetResult:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    ingest_s: float = 0.0
    note: str = ""


def settings_for(work: Path) -> Settings:
    """The default config with every writable path under ``work`` (a fresh Edge store)."""
    return load_settings(
        None,
        data_dir=work,
        store={"backend": "edge", "path": work / "qdrant-edge"},
        ingest={"state_path": work / "state.sqlite", "originals_dir": work / "originals"},
        audit={"path": work / "audit.jsonl"},
        feedback={"path": work / "feedback.sqlite"},
    )


def example_questions() -> list[Question]:
    data = json.loads(EXAMPLE_QUESTIONS.read_text(encoding="utf-8"))
    return [Question(f"ex{i + 1}", q["q"], set(q["relevant"])) for i, q in enumerate(data["questions"])]


def nl_questions(root: Path, docs: Path) -> list[Question]:
    """Writes each corpus document as ``<id>.txt`` under ``docs``; the queries with their qrels."""
    docs.mkdir(parents=True, exist_ok=True)
    with (root / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            path = docs / f"{row['_id']}.txt"  # ids are page paths such as "swriter/guide/x"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(row["text"] + "\n", encoding="utf-8")
    rel: dict[str, set[str]] = {}
    with (root / "qrels" / "test.tsv").open(encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                rel.setdefault(qid, set()).add(f"{did}.txt")
    out = []
    with (root / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["_id"] in rel:
                out.append(Question(row["_id"], row["text"], rel[row["_id"]]))
    # in the order of a hash of the query id, so that the first N (--limit) are a sample of every module
    return sorted(out, key=lambda q: hashlib.sha256(q.qid.encode()).hexdigest())


def is_relevant(source: str, relevant: set[str]) -> bool:
    source = source.replace("\\", "/")
    return any(source == r or source.endswith("/" + r) for r in relevant)


def marked_sentences(text: str) -> list[tuple[str, list[int]]]:
    return [(m.group(1).strip(), [int(n) for n in re.split(r"\s*,\s*", m.group(2))]) for m in MARKED.finditer(text)]


def score(answer: Answer, question: Question, seconds: float) -> Outcome:
    if answer.abstained:
        return Outcome(abstained=True, seconds=seconds, text=answer.text)
    source_of = {i + 1: h.chunk.source for i, h in enumerate(answer.hits)}
    marked = marked_sentences(answer.text)
    cited = relevant = 0
    for _sentence, numbers in marked:
        cited += 1
        # a sentence counts as relevant when every source it is attributed to is a relevant document
        relevant += all(is_relevant(source_of.get(n, ""), question.relevant) for n in numbers)
    plain = re.sub(r"\s?\[\d+(?:\s*,\s*\d+)*\]", "", answer.text)
    return Outcome(
        abstained=False, cited=cited, relevant=relevant, words=len(plain.split()),
        sentences=len(marked), seconds=seconds, text=answer.text,
        relevant_in_sources=any(is_relevant(h.chunk.source, question.relevant) for h in answer.hits),
    )


async def ask(comps: Components, question: Question) -> Outcome:
    t0 = time.perf_counter()
    messages = [ChatMessage("user", question.text)]
    prep = await comps.run_blocking(comps.chat.prepare, messages, STAFF, PARAMS)
    answer = comps.chat.abstention(prep) if prep.abstain else await comps.chat.answer(prep, PARAMS)
    return score(answer, question, time.perf_counter() - t0)


def run_set(name: str, docs: Path, questions: list[Question], work: Path, verbose: bool) -> SetResult:
    settings = settings_for(work)
    comps = build_components(settings)
    result = SetResult(name)
    try:
        assert comps.ingestor is not None
        t0 = time.perf_counter()
        report = comps.ingestor.ingest_paths([docs], Labels(groups=GROUPS))
        result.ingest_s = time.perf_counter() - t0
        failed = len(report.failed)
        quarantined = len(report.with_status("quarantined"))
        result.note = f"{len(report.results)} documents, {report.chunks_embedded} chunks embedded, " \
                      f"{failed} failed, {quarantined} quarantined, ingest {result.ingest_s:.0f} s"
        print(f"[{name}] {result.note}", flush=True)
        for r in report.failed[:10]:
            print(f"[{name}] failed: {r.source}: {r.reason}", file=sys.stderr)
        if not report.results or len(report.failed) == len(report.results):
            sys.exit(f"[{name}] no document was ingested")

        async def all_questions() -> None:
            for i, q in enumerate(questions, 1):
                out = await ask(comps, q)
                result.outcomes.append(out)
                if verbose:
                    status = "abstained" if out.abstained else f"{out.relevant}/{out.cited} relevant"
                    print(f"[{name} {i}/{len(questions)}] {q.text!r} ({status}, {out.seconds:.2f} s)\n    "
                          + out.text.replace("\n", " ")[:400], flush=True)
                elif i % 50 == 0:
                    print(f"[{name}] {i}/{len(questions)} asked", flush=True)

        try:
            asyncio.run(all_questions())
        except KeyboardInterrupt:  # Ctrl-C: report the questions asked so far
            result.note += f"; interrupted after {len(result.outcomes)} of {len(questions)} questions"
            print(f"[{name}] interrupted after {len(result.outcomes)} questions", flush=True)
    finally:
        asyncio.run(comps.aclose())
    return result


def pct(n: float) -> str:
    return f"{100 * n:.1f}%"


def row(res: SetResult) -> list[str]:
    outs = res.outcomes
    answered = [o for o in outs if not o.abstained]
    cited = sum(o.cited for o in answered)
    precision = sum(o.relevant for o in answered) / cited if cited else 0.0
    all_rel = sum(1 for o in answered if o.cited and o.relevant == o.cited) / len(answered) if answered else 0.0
    in_src = sum(1 for o in answered if o.relevant_in_sources) / len(answered) if answered else 0.0
    words = [o.words for o in answered] or [0]
    sents = [o.sentences for o in answered] or [0]
    times = sorted(o.seconds for o in outs) or [0.0]
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    return [
        res.name, str(len(outs)), str(len(answered)), str(len(outs) - len(answered)),
        f"{pct(precision)} ({sum(o.relevant for o in answered)}/{cited})", pct(all_rel), pct(in_src),
        f"{statistics.mean(words):.1f} / {statistics.median(words):.0f}",
        f"{statistics.mean(sents):.2f} / {statistics.median(sents):.0f}",
        f"{statistics.median(times) * 1000:.0f} / {p90 * 1000:.0f}",
    ]


HEADER = ["set", "questions", "answered", "abstained", "precision@answer (sentences)", "answers all relevant",
          "relevant doc in sources", "words mean / median", "sentences mean / median", "ms p50 / p90"]


def table(results: list[SetResult]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in results]
    return "\n".join(lines)


def write_results(text: str) -> None:
    body = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else ""
    section = "## Answers\n\n" + text.rstrip() + "\n"
    start = body.find("## Answers\n")
    if start < 0:
        body = body.rstrip() + "\n\n" + section
    else:
        nxt = body.find("\n## ", start + 1)
        body = body[:start] + section + (body[nxt:] if nxt >= 0 else "")
    RESULTS.write_text(body, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sets", default="examples,nl_lohelp", help="comma-separated: examples, nl_lohelp")
    ap.add_argument("--split", choices=("test", "dev", "all"), default="test",
                    help="queries of the Dutch set: the retrieval benchmark's test split (default), dev, or all")
    ap.add_argument("--limit", type=int, default=0, help="ask at most N questions per set (0: all)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every answer")
    ap.add_argument("--write", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = set(sets) - {"examples", "nl_lohelp"}
    if unknown:
        sys.exit(f"unknown set(s): {', '.join(sorted(unknown))}")
    results = []
    with tempfile.TemporaryDirectory(prefix="vraagbaak-answers-") as tmp:
        for name in sets:
            work = Path(tmp) / name
            if name == "examples":
                questions, docs = example_questions(), EXAMPLES
            else:
                root = ensure_built(NL_DIR)
                docs = work / "docs"
                questions = nl_questions(root, docs)
                if args.split != "all":
                    questions = [q for q in questions if split_of(q.qid) == args.split]
            if args.limit:
                questions = questions[: args.limit]
            label = name if name == "examples" else f"{name} ({args.split}{' split' if args.split != 'all' else ''})"
            results.append(run_set(label, docs, questions, work / "run", args.verbose))
    settings = load_settings(None)
    cmd = "benchmarks/answers.py " + " ".join(sys.argv[1:])
    info = (f"embedder {settings.embedder.backend} ({settings.embedder.model}), generator "
            f"{settings.generator.backend}, top_k {settings.retrieval.top_k}; "
            f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end")
    text = "\n".join([
        table(results), "",
        *[f"- {r.name}: {r.note}" for r in results],
        f"- {info}",
        f"- command: `nice -n 10 .venv/bin/python {cmd.strip()}`",
    ])
    print()
    print(text)
    if args.write:
        write_results(text)


if __name__ == "__main__":
    main()
