"""An ordered map over forked worker processes with a bounded number of tasks in flight.

``multiprocessing.Pool.imap`` drains its input iterator as fast as it can, so a streamed 1M-row
corpus would sit in the task queue; here at most ``2 * num_proc`` chunks are pending and results
come back in input order (so the first of two duplicates is the one kept). Workers are forked after
``state`` is installed, so tokenizers and lookup tables reach them without pickling.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from typing import Any, Callable, Iterable, Iterator

_STATE: dict[str, Any] = {}


def state() -> dict[str, Any]:
    """What the parent installed for this map (read inside worker functions)."""
    return _STATE


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], num_proc: int, shared: dict[str, Any]) -> Iterator[Any]:
    _STATE.clear()
    _STATE.update(shared)
    if num_proc <= 1 or "fork" not in mp.get_all_start_methods():
        for item in items:
            yield fn(item)
        return
    with mp.get_context("fork").Pool(num_proc) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.apply_async(fn, (item,)))
            if len(pending) >= 2 * num_proc:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
