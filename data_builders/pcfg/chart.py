"""Compiled sparse-chart kernels: CYK membership, exact inside probabilities, prefix probabilities.

The chart is filled column by column (end position ``j`` ascending, start ``i`` descending) and
only cells that can be non-empty are visited: a cell ``(i, j)`` is a candidate only if some
non-empty ``(k, j)`` has a non-empty left partner ``(i, k)``. The charts of the study's grammars
are nearly empty (well under 5% of cells hold a symbol at n = 400), so work and memory scale with
the non-empty cells, not with ``n³ · |rules|``.

Probabilities stay exact in float64 without underflow by storing each cell as mantissas (max 1)
times a per-cell ``exp(scale)``; accumulating a cell rescales when a split brings a larger scale.

Prefix probabilities (``P(x_1..x_t ·)``, summed over all continuations) use the same chart:
``Pre(A, i, t) = [i = t-1] p(A → x_i) + Σ_{A → B C} p · (Pre(B, i, t) + Σ_k In(B, i, k) · Pre(C, k, t))``.
The left-corner term ``Pre(B, i, t)`` is resolved in topological order of the left-corner graph, so
grammars must not be left-recursive (leveled grammars never are). One column per ``t`` reuses the
inside chart, which is the "chart extended one column per token" scheme.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

NEG_INF = -np.inf


@njit(cache=True)
def _store(acc, touched, nt, ent_sym, ent_val, ne, probs):
    if ne + nt > ent_sym.shape[0]:
        cap = max(2 * ent_sym.shape[0], ne + nt + 64)
        s2 = np.empty(cap, np.int32)
        v2 = np.empty(cap, np.float64)
        s2[:ne] = ent_sym[:ne]
        v2[:ne] = ent_val[:ne]
        ent_sym, ent_val = s2, v2
    m = 0.0
    if probs:
        for q in range(nt):
            if acc[touched[q]] > m:
                m = acc[touched[q]]
    lm = math.log(m) if m > 0.0 else 0.0
    for q in range(nt):
        a = touched[q]
        ent_sym[ne + q] = a
        if probs:
            ent_val[ne + q] = acc[a] / m if m > 0.0 else 0.0
        else:
            ent_val[ne + q] = 1.0
        acc[a] = 0.0
    return ent_sym, ent_val, ne + nt, lm


@njit(cache=True)
def build_chart(seq, nsym, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob, probs):
    """Fill the sparse chart of one sequence. ``probs=False`` computes membership only."""
    n = seq.shape[0]
    n1 = n + 1
    cell_cnt = np.zeros((n1, n1), np.int32)
    cell_off = np.empty((n1, n1), np.int64)
    cell_scale = np.empty((n1, n1), np.float64)
    ends = np.empty((n1, n1), np.int32)
    ends_cnt = np.zeros(n1, np.int32)
    starts = np.empty((n1, n1), np.int32)
    starts_cnt = np.zeros(n1, np.int32)
    cand = np.full(n1, -1, np.int64)
    ent_sym = np.empty(16 * n + 64, np.int32)
    ent_val = np.empty(16 * n + 64, np.float64)
    ne = 0
    acc = np.zeros(nsym, np.float64)
    mark = np.full(nsym, -1, np.int64)
    touched = np.empty(nsym, np.int32)
    rdense = np.zeros(nsym, np.float64)
    for j in range(1, n1):
        for i in range(j - 1, -1, -1):
            cid = i * n1 + j
            nt = 0
            S = NEG_INF
            if i == j - 1:
                a = seq[i]
                for e in range(lex_ptr[a], lex_ptr[a + 1]):
                    s = lex_sym[e]
                    if mark[s] != cid:
                        mark[s] = cid
                        touched[nt] = s
                        nt += 1
                        acc[s] = 0.0
                    acc[s] += lex_prob[e]
                S = 0.0
            else:
                if cand[i] != j:
                    continue
                for q in range(ends_cnt[i]):
                    k = ends[i, q]
                    if k >= j:
                        break
                    rc = cell_cnt[k, j]
                    if rc == 0:
                        continue
                    ro = cell_off[k, j]
                    for e in range(ro, ro + rc):
                        rdense[ent_sym[e]] = ent_val[e]
                    factor = 1.0
                    if probs:
                        sigma = cell_scale[i, k] + cell_scale[k, j]
                        if sigma > S:
                            if S > NEG_INF:
                                r = math.exp(S - sigma)
                                for u in range(nt):
                                    acc[touched[u]] *= r
                            S = sigma
                        else:
                            factor = math.exp(sigma - S)
                    lo = cell_off[i, k]
                    for e in range(lo, lo + cell_cnt[i, k]):
                        b = ent_sym[e]
                        vb = ent_val[e] * factor
                        for r in range(bl_ptr[b], bl_ptr[b + 1]):
                            vc = rdense[bl_right[r]]
                            if vc != 0.0:
                                a = bl_parent[r]
                                if mark[a] != cid:
                                    mark[a] = cid
                                    touched[nt] = a
                                    nt += 1
                                    acc[a] = 0.0
                                if probs:
                                    acc[a] += vb * vc * bl_prob[r]
                    for e in range(ro, ro + rc):
                        rdense[ent_sym[e]] = 0.0
            if nt == 0:
                continue
            off = ne
            ent_sym, ent_val, ne, lm = _store(acc, touched, nt, ent_sym, ent_val, ne, probs)
            cell_off[i, j] = off
            cell_cnt[i, j] = nt
            cell_scale[i, j] = (S + lm) if probs else 0.0
            ends[i, ends_cnt[i]] = j
            ends_cnt[i] += 1
            starts[j, starts_cnt[j]] = i
            starts_cnt[j] += 1
            for q in range(starts_cnt[i]):
                cand[starts[i, q]] = j
    return cell_off, cell_cnt, cell_scale, ent_sym, ent_val, ends, ends_cnt, ne


@njit(cache=True)
def _roots_from_cell(cell_off, cell_cnt, cell_scale, ent_sym, ent_val, i, j, root_sym, rdense, out):
    c = cell_cnt[i, j]
    o = cell_off[i, j]
    for e in range(o, o + c):
        rdense[ent_sym[e]] = ent_val[e]
    for r in range(root_sym.shape[0]):
        v = rdense[root_sym[r]]
        out[r] = math.log(v) + cell_scale[i, j] if v > 0.0 else NEG_INF
    for e in range(o, o + c):
        rdense[ent_sym[e]] = 0.0


@njit(cache=True)
def batch_root_inside(tokens, offsets, nsym, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob, root_sym, probs):
    """Per sequence and root: log inside probability of the whole sequence (membership: 0 / -inf)."""
    nb = offsets.shape[0] - 1
    R = root_sym.shape[0]
    out = np.full((nb, R), NEG_INF)
    rdense = np.zeros(nsym, np.float64)
    for b in range(nb):
        seq = tokens[offsets[b]:offsets[b + 1]]
        if seq.shape[0] == 0:
            continue
        cell_off, cell_cnt, cell_scale, ent_sym, ent_val, ends, ends_cnt, ne = build_chart(
            seq, nsym, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob, probs
        )
        n = seq.shape[0]
        if cell_cnt[0, n] > 0:
            _roots_from_cell(cell_off, cell_cnt, cell_scale, ent_sym, ent_val, 0, n, root_sym, rdense, out[b])
    return out


@njit(cache=True)
def batch_chart_size(tokens, offsets, nsym, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob):
    """Non-empty cells and stored entries per sequence (for memory accounting)."""
    nb = offsets.shape[0] - 1
    out = np.zeros((nb, 2), np.int64)
    for b in range(nb):
        seq = tokens[offsets[b]:offsets[b + 1]]
        if seq.shape[0] == 0:
            continue
        cell_off, cell_cnt, cell_scale, ent_sym, ent_val, ends, ends_cnt, ne = build_chart(
            seq, nsym, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob, False
        )
        out[b, 0] = ends_cnt.sum()
        out[b, 1] = ne
    return out


@njit(cache=True)
def _heap_push(heap, size, v):
    heap[size] = v
    c = size
    while c > 0:
        p = (c - 1) // 2
        if heap[p] <= heap[c]:
            break
        heap[p], heap[c] = heap[c], heap[p]
        c = p
    return size + 1


@njit(cache=True)
def _heap_pop(heap, size):
    top = heap[0]
    size -= 1
    heap[0] = heap[size]
    c = 0
    while True:
        l = 2 * c + 1
        if l >= size:
            break
        m = l
        if l + 1 < size and heap[l + 1] < heap[l]:
            m = l + 1
        if heap[c] <= heap[m]:
            break
        heap[c], heap[m] = heap[m], heap[c]
        c = m
    return top, size


@njit(cache=True)
def _prefix_column(t, tok, cell_off, cell_cnt, cell_scale, ent_sym, ent_val, ends, ends_cnt,
                   lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob,
                   lc_ptr, lc_parent, lc_prob, rank, order,
                   pre_off, pre_cnt, pre_scale, pre_sym, pre_val,
                   acc, mark, stamp, touched, rdense, heap):
    """Pre(·, i, t) for i = t-1 … 0, where token ``tok`` sits at position t-1 (earlier ones are real)."""
    npre = 0
    for i in range(t - 1, -1, -1):
        pre_cnt[i] = 0
        stamp += 1
        nt = 0
        S = NEG_INF
        if i == t - 1:
            for e in range(lex_ptr[tok], lex_ptr[tok + 1]):
                s = lex_sym[e]
                if mark[s] != stamp:
                    mark[s] = stamp
                    touched[nt] = s
                    nt += 1
                    acc[s] = 0.0
                acc[s] += lex_prob[e]
            S = 0.0
        else:
            for q in range(ends_cnt[i]):
                k = ends[i, q]
                if k > t - 1:
                    break
                pc = pre_cnt[k]
                if pc == 0:
                    continue
                po = pre_off[k]
                for e in range(po, po + pc):
                    rdense[pre_sym[e]] = pre_val[e]
                factor = 1.0
                sigma = cell_scale[i, k] + pre_scale[k]
                if sigma > S:
                    if S > NEG_INF:
                        r = math.exp(S - sigma)
                        for u in range(nt):
                            acc[touched[u]] *= r
                    S = sigma
                else:
                    factor = math.exp(sigma - S)
                lo = cell_off[i, k]
                for e in range(lo, lo + cell_cnt[i, k]):
                    b = ent_sym[e]
                    vb = ent_val[e] * factor
                    for r in range(bl_ptr[b], bl_ptr[b + 1]):
                        vc = rdense[bl_right[r]]
                        if vc != 0.0:
                            a = bl_parent[r]
                            if mark[a] != stamp:
                                mark[a] = stamp
                                touched[nt] = a
                                nt += 1
                                acc[a] = 0.0
                            acc[a] += vb * vc * bl_prob[r]
                for e in range(po, po + pc):
                    rdense[pre_sym[e]] = 0.0
        if nt == 0:
            continue
        # Left-corner closure, children before parents.
        hs = 0
        for u in range(nt):
            hs = _heap_push(heap, hs, rank[touched[u]])
        while hs > 0:
            rk, hs = _heap_pop(heap, hs)
            b = order[rk]
            vb = acc[b]
            for l in range(lc_ptr[b], lc_ptr[b + 1]):
                a = lc_parent[l]
                if mark[a] != stamp:
                    mark[a] = stamp
                    touched[nt] = a
                    nt += 1
                    acc[a] = 0.0
                    hs = _heap_push(heap, hs, rank[a])
                acc[a] += lc_prob[l] * vb
        off = npre
        pre_sym, pre_val, npre, lm = _store(acc, touched, nt, pre_sym, pre_val, npre, True)
        pre_off[i] = off
        pre_cnt[i] = nt
        pre_scale[i] = S + lm
    return pre_sym, pre_val, stamp


@njit(cache=True)
def prefix_scan(seq, nsym, nterm, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob,
                lc_ptr, lc_parent, lc_prob, rank, order, root_sym, with_next):
    """Per root r and prefix length t: log Pre_r(x_<t), log In_r(x_<t) and, optionally, log Pre_r(x_<t a).

    Returns ``(pre [n+1, R], inside [n+1, R], nxt [n+1, nterm, R])``.
    """
    n = seq.shape[0]
    R = root_sym.shape[0]
    cell_off, cell_cnt, cell_scale, ent_sym, ent_val, ends, ends_cnt, ne = build_chart(
        seq, nsym, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob, True
    )
    pre = np.full((n + 1, R), NEG_INF)
    pre[0, :] = 0.0
    inside = np.full((n + 1, R), NEG_INF)
    rdense = np.zeros(nsym, np.float64)
    for t in range(1, n + 1):
        if cell_cnt[0, t] > 0:
            _roots_from_cell(cell_off, cell_cnt, cell_scale, ent_sym, ent_val, 0, t, root_sym, rdense, inside[t])
    nxt = np.full((n + 1 if with_next else 0, nterm, R), NEG_INF)
    pre_off = np.empty(n + 1, np.int64)
    pre_cnt = np.zeros(n + 1, np.int32)
    pre_scale = np.empty(n + 1, np.float64)
    pre_sym = np.empty(16 * n + 64, np.int32)
    pre_val = np.empty(16 * n + 64, np.float64)
    acc = np.zeros(nsym, np.float64)
    mark = np.full(nsym, -1, np.int64)
    touched = np.empty(nsym, np.int32)
    heap = np.empty(nsym, np.int64)
    stamp = 0
    tmp = np.empty(R)
    for t in range(1, n + 1):
        pre_sym, pre_val, stamp = _prefix_column(
            t, seq[t - 1], cell_off, cell_cnt, cell_scale, ent_sym, ent_val, ends, ends_cnt,
            lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob,
            lc_ptr, lc_parent, lc_prob, rank, order, pre_off, pre_cnt, pre_scale, pre_sym, pre_val,
            acc, mark, stamp, touched, rdense, heap)
        _pre_roots(pre_off, pre_cnt, pre_scale, pre_sym, pre_val, root_sym, rdense, pre[t])
    if with_next:
        for t in range(0, n + 1):
            for a in range(nterm):
                pre_sym, pre_val, stamp = _prefix_column(
                    t + 1, a, cell_off, cell_cnt, cell_scale, ent_sym, ent_val, ends, ends_cnt,
                    lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob,
                    lc_ptr, lc_parent, lc_prob, rank, order, pre_off, pre_cnt, pre_scale, pre_sym, pre_val,
                    acc, mark, stamp, touched, rdense, heap)
                _pre_roots(pre_off, pre_cnt, pre_scale, pre_sym, pre_val, root_sym, rdense, tmp)
                nxt[t, a, :] = tmp
    return pre, inside, nxt


@njit(cache=True)
def _pre_roots(pre_off, pre_cnt, pre_scale, pre_sym, pre_val, root_sym, rdense, out):
    c = pre_cnt[0]
    o = pre_off[0]
    for e in range(o, o + c):
        rdense[pre_sym[e]] = pre_val[e]
    for r in range(root_sym.shape[0]):
        v = rdense[root_sym[r]]
        out[r] = math.log(v) + pre_scale[0] if (c > 0 and v > 0.0) else NEG_INF
    for e in range(o, o + c):
        rdense[pre_sym[e]] = 0.0
