"""Podman for the tests that run the real image (tests/test_image.py) and the stack (tests/test_stack.py).

The image is built by ``scripts/build-image`` (``make image``; CI builds it from the debootstrap base).
Without podman, root or the image these tests skip, unless ``VRAAGBAAK_REQUIRE_IMAGE=1`` (``make test``
in CI sets it), where they fail instead.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("VRAAGBAAK_IMAGE", "localhost/vraagbaak:0.1.0")


def podman_env() -> dict[str, str]:
    """runc and cgroupfs, as deploy/image/podman-env sets them for the scripts."""
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF")
            or str(ROOT / "deploy" / "image" / "containers.conf")}


def ulimit_args() -> list[str]:
    """The host's hard limits (podman's defaults are refused here); processes capped as in podman-env."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    nproc = 32768 if nproc == resource.RLIM_INFINITY or nproc > 32768 else nproc
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def podman(*args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=podman_env(),
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} … failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def unavailable() -> str | None:
    """Why the image cannot be run here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman buildah runc)"
    if os.geteuid() != 0:
        return "podman runs as root here"
    if podman("image", "exists", IMAGE, timeout=300).returncode != 0:
        return f"the image {IMAGE} is not built (scripts/build-image)"
    return None


def require_image() -> None:
    why = unavailable()
    if why is None:
        return
    if os.environ.get("VRAAGBAAK_REQUIRE_IMAGE") == "1":
        pytest.fail(why)
    pytest.skip(why)
