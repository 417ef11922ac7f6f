"""The image and the stack (issue 18): image size, cold build time, stack start-to-ready, end-to-end test.

    .venv/bin/python benchmarks/image.py            # the image as it is (cached layers count)
    .venv/bin/python benchmarks/image.py --cold     # first removes the image, the debootstrap base and
                                                    # podman's layer cache: a cold build, base included

Needs root, podman and what scripts/build-image and tests/test_stack.py need. Prints a table; paste it
into benchmarks/RESULTS.md with the command.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from container_support import IMAGE, podman, podman_env  # noqa: E402


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env or podman_env(), check=False)
    took = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return took, proc.stdout + proc.stderr


def _size(ref: str) -> int:
    return int(podman("image", "inspect", ref, "--format", "{{.Size}}", check=True).stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cold", action="store_true", help="remove image, base and layer cache first")
    ap.add_argument("--skip-e2e", action="store_true", help="only build and measure the image")
    args = ap.parse_args()

    rows: list[tuple[str, str, str]] = []
    if args.cold:
        refs = podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout.split()
        mine = [r for r in refs if "vraagbaak" in r and "stack-infra" not in r]
        if mine:
            podman("rmi", "-f", *mine, timeout=600)
        podman("image", "prune", "-f", timeout=600)  # dangling layers: the build cache
    base_s, out = _timed([str(ROOT / "scripts" / "build-image"), "--base-only"])
    base = out.strip().splitlines()[-1]
    rows.append(("debootstrap base (bookworm + python3.11)" + (" cold" if args.cold else ""), f"{base_s:.0f} s",
                 "`scripts/build-image --base-only`"))
    build_s, _ = _timed([str(ROOT / "scripts" / "build-image")])
    rows.append(("image build on that base" + (", no layer cache" if args.cold else ""), f"{build_s:.0f} s",
                 "`scripts/build-image`"))
    inspect = f"`podman image inspect {IMAGE} --format '{{{{.Size}}}}'`"
    rows.append(("image size", f"{_size(IMAGE) / 1e9:.2f} GB", inspect))
    rows.append(("  of which the base", f"{_size(base) / 1e9:.2f} GB", base))

    if not args.skip_e2e:
        env = {**podman_env(), "VRAAGBAAK_REQUIRE_IMAGE": "1", "PYTHONPATH": str(ROOT)}
        e2e_s, out = _timed([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                             "tests/test_stack.py"], env=env)
        ready = re.search(r"stack: ready in (\d+) s", out)
        rows.append(("stack start to ready (nginx, API, PostgreSQL, IdP; /readyz through nginx)",
                     f"{ready.group(1)} s" if ready else "?", "`scripts/stack up DIR` (inside the test)"))
        passed = re.search(r"(\d+) passed", out)
        rows.append((f"end-to-end test, whole ({passed.group(1) if passed else '?'} tests: up, uploads, browser, "
                     "audit, down)", f"{e2e_s:.0f} s", "`pytest -q -s tests/test_stack.py`"))

    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at the end")
    print("| what | figure | command |")
    print("|---|---:|---|")
    for what, fig, cmd in rows:
        print(f"| {what} | {fig} | {cmd} |")


if __name__ == "__main__":
    main()
