"""Result files: versioned JSON, written atomically under results/."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(os.environ.get("FWBENCH_RESULTS", "results"))


def _clean(obj: Any) -> Any:
    """JSON has no NaN or infinity: they are written as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` to `path` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    with os.fdopen(fd, "w") as f:
        json.dump(_clean(payload), f, indent=1)
    os.replace(tmp, path)
    return path


def read_json(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)
