"""Answers a nurse can trust (issue 17): the Lindehoven hospital set, examples/docs and the demo question.

    nice -n 5 .venv/bin/python benchmarks/trust.py --split dev            # tune on this
    nice -n 5 .venv/bin/python benchmarks/trust.py --split test --write   # report this (RESULTS.md)
    .venv/bin/python benchmarks/trust.py --split dev --sets hospital --kinds table -v
    .venv/bin/python benchmarks/trust.py --split dev --json out.json      # machine-readable, '-' for stdout

The product path with the default settings (embedded Qdrant Edge in a temporary directory, the
packaged embedder, the extractive answerer): each set is ingested by the real ``Ingestor`` and every
question is asked over HTTP, ``POST /v1/chat/completions`` on the app ``serving.app.create_app`` builds
(FastAPI's TestClient, the default ``insecure-dev`` staff identity of group ``iedereen``), exactly as
the page and ``make run``'s demo ask it.

Sets (``--sets``, default all):
- ``hospital``: ``benchmarks/data/hospital`` (see its LICENSE.md and ``benchmarks/hospital_set.py``),
  the questions of ``--split`` (the set's stated rule: within each kind, ids alternate dev, test).
  A question is answered *right* when the answer states every expected fact AND cites one of the
  expected documents; an unanswerable question is right when the answer abstains.
  Printed: right answers overall (answerable questions) and per kind, right document cited,
  abstention on unanswerable questions, false abstention on answerable ones, answer time p50/p90.
- ``examples``: ``examples/docs`` with ``benchmarks/data/examples_questions.json``, scored as
  ``benchmarks/answers.py`` scores it: precision@answer = cited sentences whose source is a relevant
  document over all cited sentences of the answered questions.
- ``demo``: ``make run``'s sample question (``serving.cli.serve.DEMO_QUESTION``) over examples/docs: the
  answer's first sentence, and whether it states the ward's visiting hours (14:00 and 20:00).

``--write`` puts the tables under "## Trust (issue 17)" in benchmarks/RESULTS.md, with the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.hospital_set import (  # noqa: E402
    ANSWERABLE_KINDS,
    DOCS_DIR,
    Question,
    load_questions,
    states_facts,
)

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Trust (issue 17)"
EXAMPLES = ROOT / "examples" / "docs"
EXAMPLE_QUESTIONS = ROOT / "benchmarks" / "data" / "examples_questions.json"
GROUPS = ("iedereen",)
# One marked sentence of an extractive answer: its text, then " [n]" or " [n, m]", then its punctuation.
MARKED = re.compile(r"(.+?)\s\[(\d+(?:\s*,\s*\d+)*)\]([.!?…:;]*)(?=\s|$)", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


# --- judging (pure; tested in tests/test_trust_harness.py) ---


@dataclass
class Reply:
    """What the chat API answered: text, abstention, and the sources its citations point at."""

    text: str
    abstained: bool
    cited: list[str]  # source paths of the citations
    sources: dict[int, str] = field(default_factory=dict)  # n -> source path of each cited source
    seconds: float = 0.0

    @classmethod
    def of_message(cls, msg: dict[str, Any], seconds: float = 0.0) -> Reply:
        return cls(
            text=str(msg.get("content") or ""),
            abstained=bool(msg.get("abstained")),
            cited=[str(c.get("source", "")) for c in msg.get("citations", [])],
            # the marker numbers' sources: citations carry the path (sources only a doc_id)
            sources={int(c["n"]): str(c.get("source", "")) for c in msg.get("citations", []) if "n" in c},
            seconds=seconds,
        )


def is_source(path: str, names: Sequence[str]) -> bool:
    """Whether a citation's source path is one of ``names`` (paths relative to the ingested folder)."""
    path = path.replace("\\", "/")
    return any(path == n or path.endswith("/" + n) for n in names)


@dataclass
class Judged:
    id: str
    kind: str
    question: str
    answered: bool  # not abstained
    right_doc: bool  # a cited source is an expected document
    states_fact: bool
    right: bool
    seconds: float
    answer: str

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


def judge(q: Question, reply: Reply) -> Judged:
    """Right: answerable → states every fact and cites an expected document; unanswerable → abstains."""
    answered = not reply.abstained
    right_doc = answered and any(is_source(c, q.expected_docs) for c in reply.cited)
    states = answered and q.answerable and states_facts(reply.text, q.answer_facts)
    right = (right_doc and states) if q.answerable else not answered
    return Judged(q.id, q.kind, q.question, answered, right_doc, states, right, reply.seconds, reply.text)


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n·p/100), at least 1
    return ordered[int(rank) - 1]


def summarise(judged: Sequence[Judged]) -> dict[str, Any]:
    """The figures of the issue's "Done when" for one run over the hospital set."""
    answerable = [j for j in judged if j.answerable]
    unanswerable = [j for j in judged if not j.answerable]
    times = [j.seconds for j in judged]

    def frac(part: int, whole: int) -> dict[str, Any]:
        return {"n": part, "of": whole, "rate": part / whole if whole else None}

    return {
        "questions": len(judged),
        "right_answers": frac(sum(j.right for j in answerable), len(answerable)),
        "right_by_kind": {
            k: frac(sum(j.right for j in answerable if j.kind == k), sum(1 for j in answerable if j.kind == k))
            for k in ANSWERABLE_KINDS
        },
        "states_fact": frac(sum(j.states_fact for j in answerable), len(answerable)),
        "right_doc_cited": frac(sum(j.right_doc for j in answerable), len(answerable)),
        "abstention_unanswerable": frac(sum(not j.answered for j in unanswerable), len(unanswerable)),
        "false_abstention_answerable": frac(sum(not j.answered for j in answerable), len(answerable)),
        "seconds_p50": percentile(times, 50),
        "seconds_p90": percentile(times, 90),
    }


def marked_sentences(text: str) -> list[tuple[str, list[int]]]:
    return [(m.group(1).strip(), [int(n) for n in re.split(r"\s*,\s*", m.group(2))]) for m in MARKED.finditer(text)]


def precision_counts(reply: Reply, relevant: Sequence[str]) -> tuple[int, int]:
    """(cited sentences, of which every source is relevant), as benchmarks/answers.py counts them."""
    if reply.abstained:
        return 0, 0
    cited = good = 0
    for _sentence, numbers in marked_sentences(reply.text):
        cited += 1
        good += all(is_source(reply.sources.get(n, ""), relevant) for n in numbers)
    return cited, good


def first_sentence(text: str) -> str:
    """The answer's first sentence, its citation markers kept."""
    text = text.strip()
    parts = [p for p in _SENTENCE_END.split(text) if p.strip()]
    return parts[0].strip() if parts else ""


def states_visiting_hours(sentence: str) -> bool:
    """Whether a sentence gives the wards' visiting hours (examples/docs: 14:00 to 20:00)."""
    return bool(re.search(r"\b14[:.]00\b", sentence)) and bool(re.search(r"\b20[:.]00\b", sentence))


# --- running (the real app) ---


def settings_for(work: Path) -> Any:
    from vraagbaak_core.settings import load_settings

    return load_settings(
        None,
        data_dir=work,
        store={"backend": "edge", "path": work / "qdrant-edge"},
        ingest={"state_path": work / "state.sqlite", "originals_dir": work / "originals"},
        audit={"path": work / "audit.jsonl"},
        feedback={"path": work / "feedback.sqlite"},
        limits={"rate_per_minute": 10_000},  # one client asks every question of the set in a row
    )


class App:
    """The app over one ingested folder, asked through its chat API."""

    def __init__(self, docs: Path, work: Path) -> None:
        from fastapi.testclient import TestClient

        from ingest.manifest import Labels
        from serving.app import create_app
        from serving.components import build_components

        self.settings = settings_for(work)
        self.comps = build_components(self.settings)
        assert self.comps.ingestor is not None
        t0 = time.perf_counter()
        report = self.comps.ingestor.ingest_paths([docs], Labels(groups=GROUPS))
        self.ingest_s = time.perf_counter() - t0
        self.note = (
            f"{len(report.results)} documents, {report.chunks_embedded} chunks, {len(report.failed)} failed, "
            f"ingest {self.ingest_s:.0f} s"
        )
        for r in report.failed:
            print(f"failed: {r.source}: {r.reason}", file=sys.stderr)
        if not report.results or report.failed:
            raise SystemExit(f"{docs}: not every document was ingested")
        self.client = TestClient(create_app(self.settings, self.comps), base_url="http://127.0.0.1")
        self.client.__enter__()

    def ask(self, messages: list[dict[str, str]]) -> Reply:
        body = {"model": "vraagbaak", "messages": messages}
        t0 = time.perf_counter()
        r = self.client.post("/v1/chat/completions", json=body)
        seconds = time.perf_counter() - t0
        if r.status_code != 200:
            raise SystemExit(f"chat API {r.status_code}: {r.text[:300]}")
        return Reply.of_message(r.json()["choices"][0]["message"], seconds)

    def close(self) -> None:
        self.client.__exit__(None, None, None)


def run_hospital(questions: list[Question], work: Path, verbose: bool) -> tuple[list[Judged], str]:
    app = App(DOCS_DIR, work)
    try:
        app.ask([{"role": "user", "content": "Wat is decubitus?"}])  # warm the embedder; not counted
        judged = []
        for i, q in enumerate(questions, 1):
            j = judge(q, app.ask([{"role": "user", "content": q.question}]))
            judged.append(j)
            if verbose:
                mark = "RIGHT" if j.right else ("abstained" if not j.answered else "wrong")
                detail = (
                    ""
                    if not j.answerable
                    else f" (doc {'ok' if j.right_doc else 'no'}, fact {'ok' if j.states_fact else 'no'})"
                )
                print(
                    f"[{i}/{len(questions)} {q.id} {q.kind}] {mark}{detail} {j.seconds:.2f} s\n  Q: {q.question}\n"
                    f"  A: {j.answer[:500].replace(chr(10), ' ')}",
                    flush=True,
                )
        return judged, app.note
    finally:
        app.close()


def run_examples(work: Path, verbose: bool, with_precision: bool, with_demo: bool) -> dict[str, Any]:
    from serving.cli.serve import DEMO_QUESTION

    app = App(EXAMPLES, work)
    out: dict[str, Any] = {"note": app.note}
    try:
        app.ask([{"role": "user", "content": "Wat is handhygiëne?"}])  # warm up; not counted
        if with_demo:
            reply = app.ask([{"role": "user", "content": DEMO_QUESTION}])
            first = first_sentence(reply.text)
            out["demo"] = {
                "question": DEMO_QUESTION,
                "first_sentence": first,
                "starts_with_visiting_hours": states_visiting_hours(first),
            }
        if with_precision:
            data = json.loads(EXAMPLE_QUESTIONS.read_text(encoding="utf-8"))
            cited = good = answered = 0
            times = []
            for q in data["questions"]:
                reply = app.ask([{"role": "user", "content": q["q"]}])
                times.append(reply.seconds)
                c, g = precision_counts(reply, q["relevant"])
                cited, good, answered = cited + c, good + g, answered + (not reply.abstained)
                if verbose:
                    print(f"[examples] {q['q']} ({g}/{c})\n  A: {reply.text[:300].replace(chr(10), ' ')}", flush=True)
            out["examples"] = {
                "questions": len(data["questions"]),
                "answered": answered,
                "cited_sentences": cited,
                "relevant_sentences": good,
                "precision_at_answer": good / cited if cited else None,
                "seconds_p50": percentile(times, 50),
                "seconds_p90": percentile(times, 90),
            }
    finally:
        app.close()
    return out


# --- reporting ---


def _cell(f: dict[str, Any]) -> str:
    return "–" if f["rate"] is None else f"{100 * f['rate']:.1f}% ({f['n']}/{f['of']})"


def hospital_table(s: dict[str, Any], split: str) -> str:
    rows = [
        ("right answers (states the fact and cites the right document)", _cell(s["right_answers"])),
        *[(f"… {k}", _cell(v)) for k, v in s["right_by_kind"].items()],
        ("answer states the fact", _cell(s["states_fact"])),
        ("right document cited", _cell(s["right_doc_cited"])),
        ("unanswerable questions that abstained", _cell(s["abstention_unanswerable"])),
        ("answerable questions wrongly refused", _cell(s["false_abstention_answerable"])),
        ("answer time p50 / p90", f"{s['seconds_p50']:.2f} s / {s['seconds_p90']:.2f} s"),
    ]
    lines = [f"| Lindehoven set, {split} split ({s['questions']} questions) | result |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def examples_lines(ex: dict[str, Any]) -> list[str]:
    lines = []
    if "examples" in ex:
        e = ex["examples"]
        p = "–" if e["precision_at_answer"] is None else f"{100 * e['precision_at_answer']:.1f}%"
        lines.append(
            f"- examples/docs precision@answer: **{p}** ({e['relevant_sentences']}/{e['cited_sentences']} "
            f"cited sentences; {e['answered']}/{e['questions']} questions answered)"
        )
    if "demo" in ex:
        d = ex["demo"]
        lines.append(
            f'- demo question ({d["question"]!r}), first sentence: "{d["first_sentence"]}" — starts with '
            f"the visiting hours: **{'yes' if d['starts_with_visiting_hours'] else 'no'}**"
        )
    return lines


def write_results(text: str) -> None:
    body = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else ""
    section = SECTION + "\n\n" + text.rstrip() + "\n"
    start = body.find(SECTION + "\n")
    if start < 0:
        body = body.rstrip() + "\n\n" + section
    else:
        nxt = body.find("\n## ", start + 1)
        body = body[:start] + section + (body[nxt:] if nxt >= 0 else "")
    RESULTS.write_text(body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--split", choices=("dev", "test", "all"), default="dev", help="the hospital set's split")
    ap.add_argument("--sets", default="hospital,examples,demo", help="comma-separated: hospital, examples, demo")
    ap.add_argument("--kinds", default="", help="only these kinds of the hospital set (comma-separated)")
    ap.add_argument("--limit", type=int, default=0, help="at most N hospital questions (0: all)")
    ap.add_argument("--json", metavar="FILE", help="write every figure and answer as JSON ('-': stdout)")
    ap.add_argument("--write", action="store_true", help="write the tables into benchmarks/RESULTS.md")
    ap.add_argument("--label", default="", help="a label for the RESULTS.md block (e.g. 'baseline')")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every answer")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sets = {s.strip() for s in args.sets.split(",") if s.strip()}
    if sets - {"hospital", "examples", "demo"}:
        ap.error(f"unknown set(s): {', '.join(sorted(sets - {'hospital', 'examples', 'demo'}))}")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] or None
    questions = load_questions(split=None if args.split == "all" else args.split, kinds=kinds)
    if args.limit:
        questions = questions[: args.limit]
    from vraagbaak_core.settings import load_settings

    s = load_settings(None)  # read before the run: a long run must not fail on a config edited meanwhile
    report: dict[str, Any] = {"split": args.split}
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vraagbaak-trust-") as tmp:
        if "hospital" in sets:
            judged, note = run_hospital(questions, Path(tmp) / "hospital", args.verbose)
            summary = summarise(judged)
            report["hospital"] = {"summary": summary, "note": note, "answers": [asdict(j) for j in judged]}
            lines += [hospital_table(summary, args.split), "", f"- hospital set: {note}"]
        if sets & {"examples", "demo"}:
            ex = run_examples(Path(tmp) / "examples", args.verbose, "examples" in sets, "demo" in sets)
            report.update({k: v for k, v in ex.items() if k != "note"})
            lines += examples_lines(ex) + [f"- examples/docs: {ex['note']}"]
    cmd = "nice -n 5 .venv/bin/python benchmarks/trust.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines.append(
        f"- embedder {s.embedder.backend} ({s.embedder.model}), generator {s.generator.backend}, "
        f"retrieval {s.retrieval.mode}, top_k {s.retrieval.top_k}; {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f} at the end"
    )
    lines.append(f"- command: `{cmd.strip()}`")
    text = "\n".join(lines)
    if args.label:
        text = f"**{args.label}**\n\n{text}"
    print("\n" + text, flush=True)
    if args.json:
        payload = json.dumps(report, ensure_ascii=False, indent=1)
        if args.json == "-":
            print(payload)
        else:
            Path(args.json).write_text(payload + "\n", encoding="utf-8")
    if args.write:
        write_results(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
