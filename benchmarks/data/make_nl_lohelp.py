"""Builds nl_lohelp/: a Dutch BEIR set from Debian's ``libreoffice-help-nl`` how-to pages.

    scripts/install-libreoffice-help-nl          # apt-get install, when missing (idempotent)
    .venv/bin/python benchmarks/data/make_nl_lohelp.py [--out .cache/bench/nl_lohelp]

Every ``text/*/guide/*.html`` page is one document: its body text (the visible text of the
page's display area, without the ``<h1>`` heading and without the keyword ``<meta>`` tags)
is the document; its ``<title>``, a task title such as "Spelling automatisch controleren",
is the query. Pages sharing a title form one query with all of them relevant. Pages whose
body holds fewer than 80 characters are left out.

The set is built on demand, not committed: the help text is LibreOffice's (MPL-2.0, with
Apache-2.0 parts; see ``benchmarks/data/NL_LOHELP_LICENSE.md``), and the benchmark rebuilds it
from the installed package on a fresh clone. The package version and the sha256 of the
written files are printed, so a result names exactly the set it was measured on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser as HTMLParser

HELP_ROOT = Path("/usr/share/libreoffice/help/nl/text")
DEFAULT_OUT = Path(__file__).resolve().parents[2] / ".cache" / "bench" / "nl_lohelp"
MIN_BODY = 80


def package_version() -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "libreoffice-help-nl"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def page_text(html: str) -> tuple[str, str]:
    """(title, body text) of one help page."""
    tree = HTMLParser(html)
    title_node = tree.css_first("title")
    title = " ".join((title_node.text() if title_node else "").split())
    area = tree.css_first("#DisplayArea") or tree.body
    if area is None:
        return title, ""
    for node in area.css("h1, meta, script, style"):
        node.decompose()
    parts = [" ".join(p.text(separator=" ").split()) for p in area.css("p, li, td, h2, h3, h4, h5, h6, pre")]
    text = "\n".join(p for p in parts if p)
    return title, re.sub(r"\n{2,}", "\n", text).strip()


def build(out: Path, root: Path = HELP_ROOT) -> dict[str, int | str]:
    pages = sorted(root.glob("*/guide/*.html"))
    if not pages:
        raise SystemExit(f"no guide pages under {root}: run scripts/install-libreoffice-help-nl first")
    corpus: list[dict[str, str]] = []
    by_title: dict[str, list[str]] = {}
    for page in pages:
        title, body = page_text(page.read_text(encoding="utf-8", errors="replace"))
        if not title or len(body) < MIN_BODY:
            continue
        doc_id = page.relative_to(root).with_suffix("").as_posix()
        corpus.append({"_id": doc_id, "title": "", "text": body})
        by_title.setdefault(title, []).append(doc_id)
    queries = [{"_id": f"q{i}", "text": t} for i, t in enumerate(by_title)]
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "corpus.jsonl", corpus)
    _write_jsonl(out / "queries.jsonl", queries)
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for q, docs in zip(queries, by_title.values(), strict=True):
            for d in docs:
                fh.write(f"{q['_id']}\t{d}\t1\n")
    digest = hashlib.sha256()
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        digest.update((out / name).read_bytes())
    info: dict[str, int | str] = {
        "package": f"libreoffice-help-nl {package_version()}",
        "documents": len(corpus),
        "queries": len(queries),
        "sha256": digest.hexdigest(),
    }
    (out / "BUILD.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def ensure_built(out: Path = DEFAULT_OUT) -> Path:
    """The built set, building it first when missing or when the package changed."""
    info = out / "BUILD.json"
    if info.is_file() and json.loads(info.read_text())["package"] == f"libreoffice-help-nl {package_version()}":
        return out
    build(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    info = build(args.out)
    print(f"wrote {args.out}: {info}")


if __name__ == "__main__":
    main()
