"""The answer check on the perturbed set: catch rate per changed kind, false flags on faithful answers.

    .venv/bin/python benchmarks/answer_check.py                 # test split (the reported figures)
    .venv/bin/python benchmarks/answer_check.py --split dev     # the split the checker was tuned on
    .venv/bin/python benchmarks/answer_check.py --write         # also put the table in benchmarks/RESULTS.md

The set is ``benchmarks/data/answer_check.jsonl``, built by ``benchmarks/data/make_answer_check.py``
(deterministic; ``--rebuild`` rebuilds it first): sentences of the Lindehoven hospital protocols and
examples/docs as faithful answers, faithful paraphrases, and answers with one number, unit,
negation or actor changed, each citing its source passage as [1]. Split: dev when the first byte of
sha256(item id) is even, test otherwise; the checker's rules and thresholds were adjusted on dev only.

An answer counts as *flagged* when any of its claims is ``unsupported``. Catch rate = flagged
changed answers / changed answers, per kind (and the share where the claim's kind names the change);
false-flag rate = flagged faithful answers / faithful answers (verbatim and paraphrased apart).
Targets (issue 17): catch >= 95 % and false flags <= 3 %, per kind.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.data.make_answer_check import KINDS, OUT, build  # noqa: E402
from serving.staff.answer_check.check import check_answer  # noqa: E402

PERTURBED = ("number", "unit", "negation", "actor")
SECTION = "## Answer check (issue 17 item 6)"
READING = """Reading it honestly:
- The faithful answers are verbatim quotes and *mechanical* paraphrases (a number spelled out or written in
  digits, a unit written another way, decimal comma as point, two clauses swapped at a comma). A language model
  paraphrases more freely (synonyms, merged sentences, translation); those are not in this set, so these false-flag
  figures do not hold for vLLM answers. A free paraphrase with few shared words is compared with the whole cited
  passage (looser), and a sentence with no checkable fact and little overlap is `unverifiable`, not flagged.
- The checker's lexicons (units, actors, negation cues) and the perturbations were written by the same engineer;
  a change into a word outside the lexicons is missed (test: "pharmacy" -> "ward", "°C" -> "°F", a second
  "per week" after "per kilogram lichaamsgewicht").
- The time is the checker alone, on a shared 2-core machine with other work running."""


def run(split: str, rows: list[dict[str, str]], show: int) -> tuple[str, dict[str, tuple[int, int, int]]]:
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # n, flagged, right kind
    misses: list[str] = []
    t0 = time.perf_counter()
    n_claims = 0
    for r in rows:
        if split != "all" and r["split"] != split:
            continue
        claims = check_answer(r["answer"], {1: r["source"]}, None)
        n_claims += len(claims)
        bad = [c for c in claims if c.status == "unsupported"]
        s = stats[r["kind"]]
        s[0] += 1
        s[1] += bool(bad)
        s[2] += any(c.kind == r["kind"] or (r["kind"] == "number" and c.kind == "threshold") for c in bad)
        wrong = bool(bad) if r["kind"] in ("faithful", "paraphrase") else not bad
        if wrong and len(misses) < show:
            why = "; ".join(c.reason or "" for c in bad) if bad else "not flagged"
            misses.append(f"- [{r['kind']}] {r['id']} ({r.get('change')}): {r['answer'][:160]} -> {why}")
    ms = (time.perf_counter() - t0) * 1000 / max(1, sum(v[0] for v in stats.values()))
    lines = [f"Split: {split} (sha256(item id) first byte even = dev, odd = test).", "",
             "| kind | answers | flagged | rate | target | met | flagged with the right kind |",
             "|---|---|---|---|---|---|---|"]
    for kind in KINDS:
        n, flagged, right = stats[kind]
        if not n:
            continue
        rate = flagged / n
        if kind in PERTURBED:
            target, met = "catch >= 95%", rate >= 0.95
            right_s = f"{right}/{n} ({right / n:.1%})"
        else:
            target, met = "false flags <= 3%", rate <= 0.03
            right_s = "-"
        label = {"faithful": "faithful (verbatim)", "paraphrase": "faithful paraphrase"}.get(kind, f"changed {kind}")
        lines.append(f"| {label} | {n} | {flagged} | {rate:.1%} | {target} | {'yes' if met else 'no'} | {right_s} |")
    lines += ["", f"{n_claims} claims; {ms:.1f} ms per answer (checker only, one source of up to 7 sentences)."]
    if misses:
        lines += ["", "Misses and false flags (first ones):", *misses]
    return "\n".join(lines), {k: (v[0], v[1], v[2]) for k, v in stats.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev", "test", "all"), default="test")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the set first")
    ap.add_argument("--show", type=int, default=15, help="list this many misses and false flags")
    ap.add_argument("--write", action="store_true", help=f"put the table under '{SECTION}' in RESULTS.md")
    args = ap.parse_args()
    if args.rebuild or not OUT.exists():
        build()
    rows = [json.loads(line) for line in OUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    table, _ = run(args.split, rows, args.show)
    print(table)
    if args.write:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        cmd = "`.venv/bin/python benchmarks/answer_check.py --write`" + (
            f" (`--split {args.split}`)" if args.split != "test" else "")
        dev, _ = run("dev", rows, 0) if args.split != "dev" else ("", {})
        body = (f"{SECTION}\n\nCommand: {cmd}; set `benchmarks/data/answer_check.jsonl` "
                f"({len(rows)} items) from `benchmarks/data/make_answer_check.py`; commit {commit}.\n\n{table}\n"
                + (f"\nThe same run on the dev split (where the rules were adjusted):\n\n{dev}\n" if dev else "")
                + f"\n{READING}\n")
        path = ROOT / "benchmarks" / "RESULTS.md"
        text = path.read_text(encoding="utf-8")
        start = text.find(SECTION)
        if start >= 0:
            end = text.find("\n## ", start + len(SECTION))
            text = text[:start] + body + (text[end:] if end >= 0 else "")
        else:
            text = text.rstrip("\n") + "\n\n" + body
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
