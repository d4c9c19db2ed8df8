"""The one bootstrap every interval in metacond comes from, and its confidence level.

A statistic here is always a ratio of sums over items (bits over bytes, right answers over questions, a paired
difference over scored tokens), per cell. A resample draws items (or whole clusters of items) with replacement and
recomputes each cell's ratio; evaluations (``regional.py``: per-country and per-continent intervals) and the studies'
paired differences (``metacond.eval_tasks.stats``) both call ``resampled_ratios``.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95  # every interval metacond reports


def resampled_ratios(num: np.ndarray, den: np.ndarray, n_boot: int, seed: int = 0, clusters: np.ndarray | None = None) -> np.ndarray:
    """[n_boot, cells] ratios ``sum num / sum den`` of each cell under resamples of the items (columns).

    ``num``, ``den``: [cells, items], zero where an item is absent from a cell; items are resampled jointly across
    cells. ``clusters`` ([items] ids): resample whole clusters instead (items that are not independent). A resample
    that leaves a cell without weight gives NaN there.
    """
    num, den = np.atleast_2d(np.asarray(num, np.float64)), np.atleast_2d(np.asarray(den, np.float64))
    C, N = num.shape
    cl = np.arange(N) if clusters is None else np.unique(np.asarray(clusters), return_inverse=True)[1]
    K = int(cl.max()) + 1
    # Sum items into clusters once; resampling clusters then needs [b, K] weights only.
    cnum, cden = np.zeros((C, K)), np.zeros((C, K))
    np.add.at(cnum.T, cl, num.T)
    np.add.at(cden.T, cl, den.T)
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, C))
    chunk = max(1, min(n_boot, 4_000_000 // max(K, 1)))
    for s in range(0, n_boot, chunk):
        b = min(chunk, n_boot - s)
        w = rng.multinomial(K, np.full(K, 1.0 / K), size=b).astype(np.float64)  # [b, K] counts of each resample
        d = w @ cden.T
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + b] = (w @ cnum.T) / np.where(d > 0, d, np.nan)
    return out


def percentile_interval(stats: np.ndarray) -> tuple[float, float]:
    """The central ``CONFIDENCE`` interval of resampled statistics (NaN resamples left out)."""
    tail = (1 - CONFIDENCE) / 2
    lo, hi = np.nanquantile(np.asarray(stats, np.float64), [tail, 1 - tail])
    return float(lo), float(hi)
