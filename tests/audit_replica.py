"""One API replica for the three-replica audit test: its own Edge store with one document, the real
models, and the shared PostgreSQL audit chain (``VRAAGBAAK_AUDIT__BACKEND``/``__DSN`` from the test).

Usage: python tests/audit_replica.py DATA_DIR PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

from vraagbaak_core.audit_factory import build_audit_log


def main() -> None:
    data, port = Path(sys.argv[1]), int(sys.argv[2])
    sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
    from support import make_settings

    from vraagbaak_core.egress import startup_guard

    settings = make_settings(data, generator={"max_tokens": 6}, audit={"source_id": f"replica-{port}"},
                             ingest={"patient_data": {"names": False}})  # deduce (~1 GB) per replica: not tested here
    startup_guard(settings, build_audit_log(settings))

    import uvicorn

    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components

    docs = data / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "bezoek.md").write_text(
        "# Bezoektijden\n\nBezoek is welkom van 10:00 tot 20:00 uur. Op de intensive care gelden kortere tijden.",
        encoding="utf-8",
    )
    comps = build_components(settings)
    assert comps.ingestor is not None
    comps.ingestor.ingest_paths([docs], Labels(public=True))
    uvicorn.run(create_app(settings, comps), host="127.0.0.1", port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
