"""Per-country and per-continent scores with bootstrap confidence intervals, from lm-eval's logged samples.

MCQ: accuracy (each question's 0/1 averaged over its option orders, then over questions). Regional perplexity: token-level perplexity
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

ITERS = 1000


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, transform: Callable[[np.ndarray], np.ndarray], iters: int = ITERS, seed: int = 0,
                    alpha: float = 0.05) -> tuple[float, float, float]:
    """(point, low, high) of ``transform(Σnum / Σden)`` with a percentile bootstrap over items."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    point = float(transform(np.array([num.sum() / den.sum()]))[0])
    if len(num) < 2 or iters <= 0:
        return point, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    stats = []
    for start in range(0, iters, 200):  # chunks keep the index matrix small for large groups
        idx = rng.integers(0, len(num), size=(min(200, iters - start), len(num)))
        stats.append(transform(num[idx].sum(1) / den[idx].sum(1)))
    s = np.concatenate(stats)
    return point, float(np.quantile(s, alpha / 2)), float(np.quantile(s, 1 - alpha / 2))


def _count_scored_tokens(lm, context: str, continuation: str) -> int:
    if not context:
        return len(lm.tok_encode(continuation))
    return len(lm._encode_pair(context, continuation)[1])  # lm-eval's own context/continuation split


def regional_rows(family: str, condition: str, samples: list[dict[str, Any]], lm=None, seed: int = 0, iters: int = ITERS,
                  unparsed: str = "wrong") -> list[dict[str, Any]]:
    """One row per (country) and per (continent) with value and 95% CI; ``family`` is a question family (mcq, letter,
    official, gen) or ppl. A question asked under several option orders is one item (its accuracy averaged over
    the orders), so the bootstrap resamples questions; ``unparsed="exclude"`` leaves unparsed generated answers out."""
    if family != "ppl":
        return _question_rows(family, condition, samples, seed, iters, unparsed)
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


def _question_rows(family: str, condition: str, samples: list[dict[str, Any]], seed: int, iters: int, unparsed: str) -> list[dict[str, Any]]:
    per_q: dict[Any, list[float]] = defaultdict(list)
    doc_of: dict[Any, dict[str, Any]] = {}
    for i, s in enumerate(samples):
        if unparsed == "exclude" and not s.get("parsed", 1.0):
            continue
        q = s["doc"].get("qid", i)
        per_q[q].append(float(s["acc"]))
        doc_of[q] = s["doc"]
    qs = list(per_q)
    acc = np.array([np.mean(per_q[q]) for q in qs])
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for j, q in enumerate(qs):
        groups[("country", doc_of[q]["country"])].append(j)
        groups[("continent", doc_of[q]["continent"])].append(j)
    rows = []
    for (level, key), ix in sorted(groups.items()):
        v, lo, hi = bootstrap_ratio(acc[ix], np.ones(len(ix)), lambda r: r, iters=iters, seed=seed)
        rows.append({"family": family, "condition": condition, "level": level, "key": key, "continent": doc_of[qs[ix[0]]]["continent"],
                     "metric": "acc", "value": v, "ci_low": lo, "ci_high": hi, "n": len(ix)})
    return rows
