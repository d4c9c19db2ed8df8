"""Per-country and per-continent scores with bootstrap confidence intervals, from lm-eval's logged samples.

MCQ: accuracy (each question's accuracy averaged over its option orders, then over questions). Regional perplexity: token-level perplexity
``exp(-Σ log p / Σ scored tokens)`` and bits per byte ``-Σ log p / (Σ bytes · ln 2)`` over the
articles of a group — ratios of sums, so a bootstrap resamples whole articles (percentile interval,
seeded). Scored tokens are counted the way lm-eval splits a request (context tokens removed from
the tokenized context + continuation), so the metadata block never counts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable

import numpy as np

from .intervals import percentile_interval, resampled_ratios

ITERS = 1000


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, transform: Callable[[np.ndarray], np.ndarray], iters: int = ITERS,
                    seed: int = 0) -> tuple[float, float, float]:
    """(point, low, high) of ``transform(Σnum / Σden)`` with a percentile bootstrap over items (``intervals.py``)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    point = float(transform(np.array([num.sum() / den.sum()]))[0])
    if len(num) < 2 or iters <= 0:
        return point, float("nan"), float("nan")
    lo, hi = percentile_interval(transform(resampled_ratios(num, den, iters, seed)[:, 0]))
    return point, lo, hi


def _count_scored_tokens(lm, context: str, continuation: str) -> int:
    if not context:
        return len(lm.tok_encode(continuation))
    return len(lm._encode_pair(context, continuation)[1])  # lm-eval's own context/continuation split


def regional_rows(family: str, condition: str, samples: list[dict[str, Any]], lm=None, seed: int = 0, iters: int = ITERS,
                  metric: str = "acc") -> list[dict[str, Any]]:
    """One row per (country) and per (continent) with value and 95% CI; ``family`` is a question family (mcq, letter,
    official, gen) or ppl. A question family's sample is a question (its ``metric`` averaged over its option orders),
    so the bootstrap resamples questions; ``acc_exclude`` (generated answers, unparsed ones left out) is a ratio of
    sums: right answers over parsed answers."""
    if family != "ppl":
        return _question_rows(family, condition, samples, seed, iters, metric)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[("country", s["doc"]["country"])].append(i)
        groups[("continent", s["doc"]["continent"])].append(i)
    rows = []
    ll = np.array([float(s["nll_sum"]) for s in samples])
    nbytes = np.array([float(s["doc"]["body_bytes"]) for s in samples])
    ntok = np.array([_count_scored_tokens(lm, *s["arguments"][0][:2]) for s in samples], float) if lm is not None else None
    for (level, key), ix in sorted(groups.items()):
        base = {"family": family, "condition": condition, "level": level, "key": key, "continent": samples[ix[0]]["doc"]["continent"], "n": len(ix)}
        v, lo, hi = bootstrap_ratio(-ll[ix], nbytes[ix], lambda r: r / math.log(2), iters=iters, seed=seed)
        rows.append({**base, "metric": "bits_per_byte", "value": v, "ci_low": lo, "ci_high": hi})
        if ntok is not None:
            v, lo, hi = bootstrap_ratio(-ll[ix], ntok[ix], np.exp, iters=iters, seed=seed)
            rows.append({**base, "metric": "token_perplexity", "value": v, "ci_low": lo, "ci_high": hi, "scored_tokens": int(ntok[ix].sum())})
    return rows


def _question_rows(family: str, condition: str, samples: list[dict[str, Any]], seed: int, iters: int, metric: str) -> list[dict[str, Any]]:
    if metric == "acc_exclude":
        num = np.array([float(s[metric][0]) for s in samples])
        den = np.array([float(s[metric][1]) for s in samples])
    else:
        num, den = np.array([float(s[metric]) for s in samples]), np.ones(len(samples))
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for j, s in enumerate(samples):
        groups[("country", s["doc"]["country"])].append(j)
        groups[("continent", s["doc"]["continent"])].append(j)
    rows = []
    for (level, key), ix in sorted(groups.items()):
        if den[ix].sum() == 0:  # every answer of the group unparsed: no ratio
            v, lo, hi = float("nan"), float("nan"), float("nan")
        else:
            v, lo, hi = bootstrap_ratio(num[ix], den[ix], lambda r: r, iters=iters, seed=seed)
        rows.append({"family": family, "condition": condition, "level": level, "key": key, "continent": samples[ix[0]]["doc"]["continent"],
                     "metric": metric, "value": v, "ci_low": lo, "ci_high": hi, "n": len(ix)})
    return rows
