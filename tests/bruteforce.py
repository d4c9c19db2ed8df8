"""Exhaustive enumeration of small finite grammars: the ground truth for exact inference."""

from __future__ import annotations

import itertools

import numpy as np


def language(g, j, sym=None, max_len=12):
    """{terminal tuple: p(x | j)} for all strings of length <= max_len derivable from ``sym``."""
    memo = {}

    def enum(s, budget):
        if s in g.terminals:
            return {(s,): 1.0}
        key = (s, budget)
        if key in memo:
            return memo[key]
        d = g.level_of(s)
        v = j[d] if d >= 0 else 0
        out = {}
        for r in g.rules_for(s, v):
            partial = {(): 1.0}
            for idx, child in enumerate(r.rhs):
                nxt = {}
                for pre, p in partial.items():
                    room = budget - len(pre) - (len(r.rhs) - 1 - idx)
                    if room < 1:
                        continue
                    for suf, q in enum(child, room).items():
                        if len(pre) + len(suf) <= budget:
                            nxt[pre + suf] = nxt.get(pre + suf, 0.0) + p * q
                partial = nxt
            for x, p in partial.items():
                out[x] = out.get(x, 0.0) + r.prob * p
        memo[key] = out
        return out

    return enum(sym or g.start, max_len)


def prior(g, j):
    return float(np.prod([g.priors[d][v] for d, v in enumerate(j)])) if j else 1.0


def all_languages(g, max_len=12):
    js = [tuple(j) for j in itertools.product(*[range(k) for k in g.num_variants])]
    per = {j: language(g, j, max_len=max_len) for j in js}
    marg = {}
    for j, lang in per.items():
        for x, p in lang.items():
            marg[x] = marg.get(x, 0.0) + prior(g, j) * p
    return per, marg
