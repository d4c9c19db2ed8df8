"""One study directory holds one set of settings: cached builds, models and evaluations pair items by index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from metacond import MetacondError

FILE = "study_key.json"


def check_study_key(out: Path, key: dict[str, Any]) -> None:
    """Record ``key`` in ``out``, or refuse (one line naming what differs) when ``out`` holds a study made with other settings."""
    path = out / FILE
    key = json.loads(json.dumps(key, default=str))
    old = json.loads(path.read_text()) if path.is_file() else None
    if old is not None and old != key:
        changed = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
        raise MetacondError(f"{out} holds a study made with other settings ({', '.join(changed)} differ); pass --force or another --output_dir")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(key, indent=1))
    tmp.replace(path)
