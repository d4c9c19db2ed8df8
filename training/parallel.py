"""Several runs side by side on one machine: one single-thread process each.

On a 2-core CPU two small models train faster as two single-thread processes than one after the other in
one two-thread process (benchmarks/bench_seed_parallel.py measures it). A GPU, or one job, runs in this
process. Jobs are top-level functions with picklable (dataclass) arguments, run in spawned processes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence


def _one_thread() -> None:
    """Worker start-up: one thread per process, so N processes share N cores without oversubscription."""
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def side_by_side(fn: Callable[..., Any], jobs: Sequence[tuple], workers: int, desc: str = "runs") -> list[Any]:
    """``[fn(*job) for job in jobs]``, in ``workers`` single-thread processes when workers > 1 (results in job order)."""
    from tqdm.auto import tqdm

    if workers <= 1 or len(jobs) <= 1:
        return [fn(*job) for job in tqdm(jobs, desc=desc, unit="run")]
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context("spawn"), initializer=_one_thread) as pool:
        futures = {pool.submit(fn, *job): k for k, job in enumerate(jobs)}
        out: list[Any] = [None] * len(jobs)
        for f in tqdm(as_completed(futures), total=len(futures), desc=f"{desc} ({min(workers, len(jobs))} processes, 1 thread each)", unit="run"):
            out[futures[f]] = f.result()
    return out
