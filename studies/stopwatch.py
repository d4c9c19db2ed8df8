"""Seconds per named stage of a study, for its results (where a run's minutes go)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class Stopwatch(dict):
    """``with watch("train"): ...`` records the block's wall seconds (rounded to 0.1 s) under that name."""

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t = time.time()
        try:
            yield
        finally:
            self[name] = round(time.time() - t, 1)
