"""An API process whose answers stop after their first piece and never finish (a long answer), for the
SIGKILL-mid-stream test: real uvicorn, the real embedder, Qdrant Edge and the file audit chain; the one
scripted edge case is the generator holding the stream open.

Usage: python tests/chat_holding_server.py DATA_DIR PORT
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any


class HoldingGenerator:
    """The extractive generator, held open after the first piece of every streamed answer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def stream_from_sources(self, question: str, hits: Sequence[Any], language: str,
                                  params: Any) -> AsyncIterator[str]:
        async for piece in self.inner.stream_from_sources(question, hits, language, params):
            yield piece
            while True:
                await asyncio.sleep(3600)


def main() -> None:
    data, port = Path(sys.argv[1]), int(sys.argv[2])
    sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
    from support import make_settings

    from vraagbaak_core.audit_factory import build_audit_log
    from vraagbaak_core.egress import startup_guard

    settings = make_settings(data)
    startup_guard(settings, build_audit_log(settings))

    import uvicorn

    from ingest.manifest import Labels
    from retrieval.embedders import build_embedder
    from serving.app import create_app
    from serving.components import build_components
    from serving.staff.generators.factory import build_generator
    from vraagbaak_core.settings import PROJECT_ROOT

    docs = data / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "handhygiene.md").write_text(
        "# Handhygiëne\n\nWrijf de handalcohol minstens dertig seconden in, tot de handen droog zijn. "
        "Desinfecteer de handen voor en na elk patiëntcontact.", encoding="utf-8")
    embedder = build_embedder(settings.embedder, PROJECT_ROOT)
    comps = build_components(settings, embedder=embedder,
                             generator=HoldingGenerator(build_generator(settings, embedder)))
    assert comps.ingestor is not None
    comps.ingestor.ingest_paths([docs], Labels(public=True))
    uvicorn.run(create_app(settings, comps), host="127.0.0.1", port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
