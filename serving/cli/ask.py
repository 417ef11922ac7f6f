"""``vraagbaak ask``: one staff question on the command line, through the same chat service and audit as the API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import typer

from serving.cli.common import ConfigOpt, boot


def _print_answer(answer: Any) -> None:
    typer.echo(answer.text)
    if answer.citations:
        typer.echo("\nBronnen / sources:")
        for c in answer.citations:
            where = (f", p. {c.page}" if c.page is not None else "") + (f", § {c.section}" if c.section else "")
            typer.echo(f"  [{c.n}] {c.title}{where}  ({c.source or c.doc_id}, score {c.score:.3f})")
    elif not answer.abstained and answer.hits:
        typer.echo("\n(no source was cited; retrieved: "
                   + "; ".join(sorted({h.chunk.title for h in answer.hits})) + ")")


def ask(question: str, config: ConfigOpt = None,
        as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Ask one question on the command line (as the configured dev identity) and print answer and sources."""
    settings = boot(config)
    from serving.components import build_components
    from vraagbaak_core.types import ChatMessage, GenerationParams, Identity

    comps = build_components(settings)
    a = settings.auth
    identity = Identity(a.dev_user, frozenset({"staff"}), frozenset(a.dev_groups), a.dev_clearance, "cli")
    params = GenerationParams(max_tokens=settings.generator.max_tokens, temperature=settings.generator.temperature)
    prep = comps.chat.prepare([ChatMessage("user", question)], identity, params)
    guarded = comps.records.guard(prep.query)  # what may be stored of it (audit.question_text)
    access = comps.records.access(None, identity, guarded, prep.hits)  # before any source text is shown
    answer = comps.chat.abstention(prep) if prep.abstain else asyncio.run(comps.chat.answer(prep, params))
    comps.records.outcome(None, identity, guarded, answer.hits, answer=answer, access_event_id=access)
    if guarded.notice:
        typer.echo(guarded.notice, err=True)
    if as_json:
        typer.echo(json.dumps({
            "answer": answer.text, "abstained": answer.abstained,
            "citations": [dataclasses.asdict(c) for c in answer.citations],
            "sources": [{"n": i + 1, "doc_id": h.chunk.doc_id, "title": h.chunk.title, "page": h.chunk.page,
                         "chunk_id": h.chunk.chunk_id, "score": h.score} for i, h in enumerate(answer.hits)],
        }, ensure_ascii=False, indent=2))
    else:
        _print_answer(answer)
    comps.store.close()
