"""The in-process generator at shutdown, on the real model (SmolLM2) in a child interpreter.

The defect replayed: a generation left running when the process exits (a client that went away
mid-stream, a test that ends while an answer is still streaming) ran in a *daemon* thread; the
interpreter tore down while that thread was inside a torch op, and libstdc++ aborted the process with
"terminate called without an active exception" (exit status 134) after all work had succeeded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from support import MODEL_DIR, ROOT

CHILD = textwrap.dedent("""
    import asyncio, sys, threading
    from serving.staff.generators.transformers_local import TransformersGenerator
    from vraagbaak_core.types import ChatMessage, GenerationParams

    gen = TransformersGenerator(__import__("pathlib").Path(sys.argv[1]), 2048)
    MESSAGES = [ChatMessage("user", "Schrijf een lang verhaal over een verpleegkundige op de afdeling.")]

    async def main() -> None:
        stream = gen.stream(MESSAGES, GenerationParams(max_tokens=48))
        first = await stream.__anext__()   # the generation is under way; the reader goes away
        print("first piece", bool(first), flush=True)
        if sys.argv[2] == "aclose":
            await gen.aclose()
            alive = [t for t in threading.enumerate() if t.name == "generate"]
            print("generate threads after aclose:", len(alive), flush=True)

    asyncio.run(main())
""")


def _child(mode: str) -> subprocess.CompletedProcess[str]:
    if not (MODEL_DIR / "config.json").is_file():
        pytest.fail(f"{MODEL_DIR} is missing: run `make models`")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", CHILD, str(MODEL_DIR), mode], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("mode", ["abandon", "aclose"])
def test_a_process_exits_cleanly_with_a_generation_still_running(mode: str) -> None:
    done = _child(mode)
    assert "first piece True" in done.stdout, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
    assert done.returncode == 0, done.stderr[-2000:]
    if mode == "aclose":
        assert "generate threads after aclose: 0" in done.stdout
