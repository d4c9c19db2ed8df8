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


@njit(cache=True, inline="always")
def _touch(a, acc, mark, stamp, touched, nt):
    """Register symbol ``a`` in the current cell (zeroing it on first touch); return the new count."""
    if mark[a] != stamp:
        mark[a] = stamp
        touched[nt] = a
        acc[a] = 0.0
        return nt + 1
    return nt


@njit(cache=True, inline="always")
def _seed_lexical(tok, lex_ptr, lex_sym, lex_prob, acc, mark, stamp, touched):
    nt = 0
    for e in range(lex_ptr[tok], lex_ptr[tok + 1]):
        s = lex_sym[e]
        nt = _touch(s, acc, mark, stamp, touched, nt)
        acc[s] += lex_prob[e]
    return nt


@njit(cache=True, inline="always")
def _rescale(acc, touched, nt, S, sigma):
    """Move the accumulator to the larger of its scale and a split's; return (scale, factor for the split)."""
    if sigma > S:
        if S > NEG_INF:
            r = math.exp(S - sigma)
            for u in range(nt):
                acc[touched[u]] *= r
        return sigma, 1.0
    return S, math.exp(sigma - S)


@njit(cache=True, inline="always")
def _combine(lo, cnt, factor, ent_sym, ent_val, rdense, bl_ptr, bl_right, bl_parent, bl_prob, acc, mark, stamp, touched, nt, probs):
    """Add p(A -> B C) · left(B) · right(C) for the left cell's entries B and right children C held in ``rdense``."""
    for e in range(lo, lo + cnt):
        b = ent_sym[e]
        vb = ent_val[e] * factor
        for r in range(bl_ptr[b], bl_ptr[b + 1]):
            vc = rdense[bl_right[r]]
            if vc != 0.0:
                a = bl_parent[r]
                nt = _touch(a, acc, mark, stamp, touched, nt)
                if probs:
                    acc[a] += vb * vc * bl_prob[r]
    return nt


@njit(cache=True)
def _new_cells(cap):
    """Cell records: end, entry offset, entry count, log scale, next by start, next by end, start."""
    return (np.empty(cap, np.int32), np.empty(cap, np.int64), np.empty(cap, np.int32), np.empty(cap, np.float64),
            np.empty(cap, np.int32), np.empty(cap, np.int32), np.empty(cap, np.int32))


@njit(cache=True)
def _grow_cells(c_end, c_off, c_cnt, c_scale, c_next, c_enext, c_start):
    e2, o2, n2, s2, x2, y2, z2 = _new_cells(2 * c_end.shape[0])
    m = c_end.shape[0]
    e2[:m] = c_end
    o2[:m] = c_off
    n2[:m] = c_cnt
    s2[:m] = c_scale
    x2[:m] = c_next
    y2[:m] = c_enext
    z2[:m] = c_start
    return e2, o2, n2, s2, x2, y2, z2


@njit(cache=True)
def build_chart(seq, nsym, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob, probs):
    """Fill the sparse chart of one sequence. ``probs=False`` computes membership only.

    Storage is O(n + cells + entries): non-empty cells are records in creation order, linked per
    start position in ascending end order (``head``/``c_next``) and per end position (``ehead``/
    ``c_enext``); a column-local index finds ``(k, j)`` while column ``j`` is being filled.
    """
    n = seq.shape[0]
    n1 = n + 1
    c_end, c_off, c_cnt, c_scale, c_next, c_enext, c_start = _new_cells(4 * n + 16)
    nc = 0
    head = np.full(n1, -1, np.int32)
    tail = np.full(n1, -1, np.int32)
    ehead = np.full(n1, -1, np.int32)
    col = np.full(n1, -1, np.int32)  # col[k]: cell (k, j) of the current column j
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
                nt = _seed_lexical(seq[i], lex_ptr, lex_sym, lex_prob, acc, mark, cid, touched)
                S = 0.0
            else:
                if cand[i] != j:
                    continue
                lc = head[i]
                while lc != -1:
                    k = c_end[lc]
                    if k >= j:
                        break
                    rcell = col[k]
                    if rcell == -1:
                        lc = c_next[lc]
                        continue
                    ro = c_off[rcell]
                    rc = c_cnt[rcell]
                    for e in range(ro, ro + rc):
                        rdense[ent_sym[e]] = ent_val[e]
                    factor = 1.0
                    if probs:
                        S, factor = _rescale(acc, touched, nt, S, c_scale[lc] + c_scale[rcell])
                    nt = _combine(c_off[lc], c_cnt[lc], factor, ent_sym, ent_val, rdense, bl_ptr, bl_right, bl_parent, bl_prob,
                                  acc, mark, cid, touched, nt, probs)
                    for e in range(ro, ro + rc):
                        rdense[ent_sym[e]] = 0.0
                    lc = c_next[lc]
            if nt == 0:
                continue
            off = ne
            ent_sym, ent_val, ne, lm = _store(acc, touched, nt, ent_sym, ent_val, ne, probs)
            if nc == c_end.shape[0]:
                c_end, c_off, c_cnt, c_scale, c_next, c_enext, c_start = _grow_cells(c_end, c_off, c_cnt, c_scale, c_next, c_enext, c_start)
            c_end[nc] = j
            c_start[nc] = i
            c_off[nc] = off
            c_cnt[nc] = nt
            c_scale[nc] = (S + lm) if probs else 0.0
            c_next[nc] = -1
            if tail[i] == -1:
                head[i] = nc
            else:
                c_next[tail[i]] = nc
            tail[i] = nc
            c_enext[nc] = ehead[j]
            ehead[j] = nc
            col[i] = nc
            # Cells ending at i can now pair with (i, j): their starts are candidates in this column.
            q = ehead[i]
            while q != -1:
                cand[c_start[q]] = j
                q = c_enext[q]
            nc += 1
        # Reset the column index for the next column.
        q = ehead[j]
        while q != -1:
            col[c_start[q]] = -1
            q = c_enext[q]
    return head, c_end, c_off, c_cnt, c_scale, c_next, ent_sym, ent_val, ne, nc


@njit(cache=True)
def _find_cell(head, c_end, c_next, i, j):
    c = head[i]
    while c != -1:
        if c_end[c] == j:
            return c
        if c_end[c] > j:
            return -1
        c = c_next[c]
    return -1


@njit(cache=True)
def _roots_from_cell(c_off, c_cnt, c_scale, ent_sym, ent_val, cell, root_sym, rdense, out):
    o = c_off[cell]
    c = c_cnt[cell]
    for e in range(o, o + c):
        rdense[ent_sym[e]] = ent_val[e]
    for r in range(root_sym.shape[0]):
        v = rdense[root_sym[r]]
        out[r] = math.log(v) + c_scale[cell] if v > 0.0 else NEG_INF
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
        head, c_end, c_off, c_cnt, c_scale, c_next, ent_sym, ent_val, ne, nc = build_chart(
            seq, nsym, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob, probs
        )
        cell = _find_cell(head, c_end, c_next, 0, seq.shape[0])
        if cell != -1:
            _roots_from_cell(c_off, c_cnt, c_scale, ent_sym, ent_val, cell, root_sym, rdense, out[b])
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
        head, c_end, c_off, c_cnt, c_scale, c_next, ent_sym, ent_val, ne, nc = build_chart(
            seq, nsym, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob, False
        )
        out[b, 0] = nc
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
def _prefix_column(t, tok, head, c_end, c_off, c_cnt, c_scale, c_next, ent_sym, ent_val,
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
            nt = _seed_lexical(tok, lex_ptr, lex_sym, lex_prob, acc, mark, stamp, touched)
            S = 0.0
        else:
            lc = head[i]
            while lc != -1:
                k = c_end[lc]
                if k > t - 1:
                    break
                pc = pre_cnt[k]
                if pc == 0:
                    lc = c_next[lc]
                    continue
                po = pre_off[k]
                for e in range(po, po + pc):
                    rdense[pre_sym[e]] = pre_val[e]
                S, factor = _rescale(acc, touched, nt, S, c_scale[lc] + pre_scale[k])
                nt = _combine(c_off[lc], c_cnt[lc], factor, ent_sym, ent_val, rdense, bl_ptr, bl_right, bl_parent, bl_prob,
                              acc, mark, stamp, touched, nt, True)
                for e in range(po, po + pc):
                    rdense[pre_sym[e]] = 0.0
                lc = c_next[lc]
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
                before = nt
                nt = _touch(a, acc, mark, stamp, touched, nt)
                if nt > before:  # a parent seen for the first time joins the queue
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
    head, c_end, c_off, c_cnt, c_scale, c_next, ent_sym, ent_val, ne, nc = build_chart(
        seq, nsym, lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob, True
    )
    pre = np.full((n + 1, R), NEG_INF)
    pre[0, :] = 0.0
    inside = np.full((n + 1, R), NEG_INF)
    rdense = np.zeros(nsym, np.float64)
    c = head[0]
    while c != -1:
        _roots_from_cell(c_off, c_cnt, c_scale, ent_sym, ent_val, c, root_sym, rdense, inside[c_end[c]])
        c = c_next[c]
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
            t, seq[t - 1], head, c_end, c_off, c_cnt, c_scale, c_next, ent_sym, ent_val,
            lex_ptr, lex_sym, lex_prob, bl_ptr, bl_right, bl_parent, bl_prob,
            lc_ptr, lc_parent, lc_prob, rank, order, pre_off, pre_cnt, pre_scale, pre_sym, pre_val,
            acc, mark, stamp, touched, rdense, heap)
        _pre_roots(pre_off, pre_cnt, pre_scale, pre_sym, pre_val, root_sym, rdense, pre[t])
    if with_next:
        for t in range(0, n + 1):
            for a in range(nterm):
                pre_sym, pre_val, stamp = _prefix_column(
                    t + 1, a, head, c_end, c_off, c_cnt, c_scale, c_next, ent_sym, ent_val,
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
