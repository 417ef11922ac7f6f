"""Precision and recall of the patient-data quarantine on generated Dutch documents.

    .venv/bin/python benchmarks/patientdata.py            # test split (seed 2), the reported figures
    .venv/bin/python benchmarks/patientdata.py --dev      # dev split (seed 1), for tuning

Each document goes through the Markdown loader and the guard exactly as the parser worker runs
them (``ingest.patientdata.PatientDataGuard`` with the default settings). Goals (issue 13):
recall ≥ 0.98 on documents with a valid BSN, ≥ 0.90 overall, precision ≥ 0.95.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.patient_docs import generate  # noqa: E402

from ingest.loaders.markdown import MarkdownLoader  # noqa: E402
from ingest.patientdata import GuardConfig, PatientDataGuard  # noqa: E402
from vraagbaak_core.settings import PatientDataSettings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", action="store_true", help="the dev split (seed 1) instead of the test split")
    ap.add_argument("-n", type=int, default=240, help="documents (half planted)")
    ap.add_argument("--show", action="store_true", help="print the misclassified documents' kinds")
    args = ap.parse_args()
    seed = 1 if args.dev else 2
    docs = generate(seed, args.n)
    s = PatientDataSettings()
    t0 = time.perf_counter()
    guard = PatientDataGuard(GuardConfig(s.threshold, tuple(s.patient_number_patterns), s.names))
    load_s = time.perf_counter() - t0
    loader = MarkdownLoader()
    tp = fp = fn = tn = 0
    bsn_pos = bsn_hit = 0
    by_kind: dict[str, list[int]] = {}
    t0 = time.perf_counter()
    for d in docs:
        found = guard.scan(loader.load(d.text.encode(), d.name).text)
        q = found.over(s.threshold)
        if d.positive:
            tp += q
            fn += not q
            for k in d.planted:
                by_kind.setdefault(k, [0, 0])
                by_kind[k][0] += 1
                by_kind[k][1] += q
            if "bsn" in d.planted:
                bsn_pos += 1
                bsn_hit += q
        else:
            fp += q
            tn += not q
        if args.show and q != d.positive:
            print(f"  {'FP' if q else 'FN'} {d.name} planted={d.planted} found={found.summary()}")
    scan_s = time.perf_counter() - t0
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(f"split: {'dev (seed 1)' if args.dev else 'test (seed 2)'}, {len(docs)} documents, "
          f"{tp + fn} planted, {tn + fp} clean")
    print(f"{'metric':<28}{'value':>8}{'goal':>8}")
    print(f"{'precision':<28}{precision:>8.3f}{'≥0.95':>8}")
    print(f"{'recall (all planted)':<28}{recall:>8.3f}{'≥0.90':>8}")
    print(f"{'recall (valid BSN)':<28}{bsn_hit / max(1, bsn_pos):>8.3f}{'≥0.98':>8}")
    for k, (n, hit) in sorted(by_kind.items()):
        print(f"{'recall (contains ' + k + ')':<28}{hit / n:>8.3f}")
    print(f"confusion: tp={tp} fp={fp} fn={fn} tn={tn}")
    print(f"guard load {load_s:.1f} s; scan {scan_s / len(docs) * 1000:.1f} ms/document")


if __name__ == "__main__":
    main()
