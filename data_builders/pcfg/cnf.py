"""Compile a :class:`Grammar` into flat CNF arrays for the chart kernels.

Variants become ordinary symbols: a level-``d`` nonterminal ``A`` is split into annotated symbols
``(A, j_d … j_{D-1})`` — below level ``d`` the grammar depends only on that suffix of ``j``. The
result is an exact plain PCFG with one start symbol ``(S, j)`` per metadata combination, weighted
by the prior ``p(j)``; so ``p(x) = Σ_j p(j) p(x | j)`` and every per-``j`` quantity falls out of one
chart. Longer right-hand sides are binarized with shared probability-1 intermediates, terminals
inside them get probability-1 preterminals, and unit rules are folded into their closure.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .grammar import Grammar


@dataclass
class CompiledGrammar:
    nsym: int
    nterm: int
    sym_names: list[str]
    lex_ptr: np.ndarray  # [nterm+1] CSR over terminals -> (lex_sym, lex_prob)
    lex_sym: np.ndarray
    lex_prob: np.ndarray
    bl_ptr: np.ndarray  # [nsym+1] CSR over left child -> (bl_right, bl_parent, bl_prob)
    bl_right: np.ndarray
    bl_parent: np.ndarray
    bl_prob: np.ndarray
    lc_ptr: np.ndarray  # [nsym+1] CSR over left child -> (lc_parent, lc_prob): left-corner weights
    lc_parent: np.ndarray
    lc_prob: np.ndarray
    rank: np.ndarray  # topological rank of the left-corner graph (children first)
    left_recursive: bool
    root_sym: np.ndarray  # [R]
    root_prior: np.ndarray  # [R]
    root_meta: np.ndarray  # [R, D] metadata j of each root
    terminal_index: dict[str, int] = field(default_factory=dict)

    @property
    def num_roots(self) -> int:
        return int(self.root_sym.shape[0])

    @property
    def num_binary(self) -> int:
        return int(self.bl_right.shape[0])


class _Symbols:
    """Chart symbol ids, assigned on first use, with their readable names."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.ids: dict[tuple, int] = {}

    def __call__(self, key: tuple) -> int:
        if key not in self.ids:
            self.ids[key] = len(self.names)
            self.names.append(_name(key))
        return self.ids[key]


def compile_grammar(g: Grammar) -> CompiledGrammar:
    """Leveled rules -> variant-annotated CNF with unit rules folded, as CSR tables the numba kernels read."""
    tindex = {t: i for i, t in enumerate(g.terminals)}
    sid = _Symbols()
    roots = _roots(g)
    for key, _, _ in roots:
        sid(key)
    lex, binary, unit = _binarize(_annotate(g, tindex), sid, tindex)
    if unit:
        lex, binary = _fold_units(len(sid.names), unit, lex, binary)
    nsym, nterm = len(sid.names), len(g.terminals)
    # CSR tables: lexical rules by terminal, binary rules by left child, left-corner weights by child.
    lex_ptr, (lex_sym, lex_prob) = _csr(nterm, [(t, (a, p)) for (a, t), p in lex.items()], (np.int32, np.float64))
    bl_ptr, (bl_right, bl_parent, bl_prob) = _csr(nsym, [(b, (c, a, p)) for (a, b, c), p in binary.items()], (np.int32, np.int32, np.float64))
    lc: dict[tuple[int, int], float] = {}
    for (a, b, _), p in binary.items():
        lc[(b, a)] = lc.get((b, a), 0.0) + p
    lc_ptr, (lc_parent, lc_prob) = _csr(nsym, [(b, (a, p)) for (b, a), p in lc.items()], (np.int32, np.float64))
    rank, left_recursive = _left_corner_rank(nsym, lc_ptr, lc_parent)
    root_meta = np.array([m for _, _, m in roots], np.int64).reshape(len(roots), max(g.depth, 0))
    return CompiledGrammar(
        nsym=nsym, nterm=nterm, sym_names=sid.names,
        lex_ptr=lex_ptr, lex_sym=lex_sym, lex_prob=lex_prob,
        bl_ptr=bl_ptr, bl_right=bl_right, bl_parent=bl_parent, bl_prob=bl_prob,
        lc_ptr=lc_ptr, lc_parent=lc_parent, lc_prob=lc_prob, rank=rank, left_recursive=left_recursive,
        root_sym=np.array([sid.ids[k] for k, _, _ in roots], np.int32),
        root_prior=np.array([p for _, p, _ in roots], np.float64),
        root_meta=root_meta, terminal_index=tindex,
    )


def _annotate(g: Grammar, tindex: dict[str, int]) -> list[tuple[tuple, tuple, float]]:
    """(lhs key, rhs keys, prob): each leveled rule copied once per setting of the levels below its own,
    so a symbol carries the variant indices of every level from its own down (``('N', name, suffix)``)."""
    D, K = g.depth, g.num_variants
    if D == 0:
        return [(("N", r.lhs, ()), tuple(("N", s, ()) if s not in tindex else ("T", s) for s in r.rhs), r.prob) for r in g.rules]
    ann = []
    for r in g.rules:
        d = g.level_of(r.lhs)
        for rest in itertools.product(*[range(K[e]) for e in range(d + 1, D)]):
            lhs = ("N", r.lhs, (r.variant,) + tuple(rest))
            rhs = tuple(("T", s) if s in tindex else ("N", s, tuple(rest)) for s in r.rhs)
            ann.append((lhs, rhs, r.prob))
    return ann


def _roots(g: Grammar) -> list[tuple[tuple, float, tuple]]:
    """(start key, prior probability, j) for every full metadata vector j (one root for a plain grammar)."""
    if g.depth == 0:
        return [(("N", g.start, ()), 1.0, ())]
    priors = g.priors
    return [(("N", g.start, tuple(j)), float(np.prod([priors[d][j[d]] for d in range(g.depth)])), tuple(j))
            for j in itertools.product(*[range(k) for k in g.num_variants])]


def _binarize(ann, sid: _Symbols, tindex: dict[str, int]):
    """Lexical, binary and unit rule weights; terminals inside longer rules get preterminals, long rules are right-binarized."""
    lex: dict[tuple[int, int], float] = {}
    binary: dict[tuple[int, int, int], float] = {}
    unit: dict[int, dict[int, float]] = {}
    for lhs, rhs, p in ann:
        a = sid(lhs)
        if len(rhs) == 1:
            if rhs[0][0] == "T":
                lex[(a, tindex[rhs[0][1]])] = lex.get((a, tindex[rhs[0][1]]), 0.0) + p
            else:
                b = sid(rhs[0])
                unit.setdefault(a, {})[b] = unit.get(a, {}).get(b, 0.0) + p
            continue
        kids = []
        for s in rhs:
            if s[0] == "T":
                pt = sid(("P", s[1]))
                lex[(pt, tindex[s[1]])] = 1.0
                kids.append(pt)
            else:
                kids.append(sid(s))
        # Right-binarize with intermediates shared by their child tuple (probability 1, so a
        # second rule reaching the same intermediate must not add to it).
        cur, prob, inter = a, p, False
        while len(kids) > 2:
            tail = tuple(kids[1:])
            y = sid(("I", tail))
            _add_binary(binary, (cur, kids[0], y), prob, inter)
            cur, kids, prob, inter = y, list(tail), 1.0, True
        _add_binary(binary, (cur, kids[0], kids[1]), prob, inter)
    return lex, binary, unit


def _left_corner_rank(nsym: int, lc_ptr: np.ndarray, lc_parent: np.ndarray) -> tuple[np.ndarray, bool]:
    """Topological rank of symbols along left-corner edges child -> parent (Kahn); a cycle means left recursion."""
    indeg = np.bincount(lc_parent, minlength=nsym).astype(np.int64)
    order = [s for s in range(nsym) if indeg[s] == 0]
    head = 0
    while head < len(order):
        b = order[head]
        head += 1
        for k in range(lc_ptr[b], lc_ptr[b + 1]):
            a = lc_parent[k]
            indeg[a] -= 1
            if indeg[a] == 0:
                order.append(int(a))
    rank = np.zeros(nsym, np.int64)
    rank[np.array(order, np.int64)] = np.arange(len(order))
    return rank, len(order) < nsym


def _csr(n_rows: int, items: list[tuple[int, tuple]], dtypes: tuple) -> tuple[np.ndarray, list[np.ndarray]]:
    """Row pointers and column arrays for (row, values) items, sorted by row then values."""
    items = sorted(items)
    ptr = np.zeros(n_rows + 1, np.int64)
    for row, _ in items:
        ptr[row + 1] += 1
    cols = [np.array([v[k] for _, v in items], dt) for k, dt in enumerate(dtypes)]
    return np.cumsum(ptr), cols


def _add_binary(binary: dict, key: tuple, prob: float, intermediate: bool) -> None:
    binary[key] = 1.0 if intermediate else binary.get(key, 0.0) + prob


def _name(key: tuple) -> str:
    if key[0] == "N":
        return key[1] + ("[" + ",".join(map(str, key[2])) + "]" if key[2] else "")
    if key[0] == "P":
        return f"⟨pre {key[1]}⟩"
    return "⟨" + " ".join(map(str, key[1])) + "⟩"


def _fold_units(nsym, unit, lex, binary):
    """Replace unit rules A -> B by A's closure over B's non-unit rules (the grammar has no unit cycles)."""
    closure: dict[int, dict[int, float]] = {}

    def close(a: int) -> dict[int, float]:
        if a in closure:
            return closure[a]
        out = {a: 1.0}
        for b, p in unit.get(a, {}).items():
            for c, q in close(b).items():
                out[c] = out.get(c, 0.0) + p * q
        closure[a] = out
        return out

    lex_by = {}
    for (a, t), p in lex.items():
        lex_by.setdefault(a, []).append((t, p))
    bin_by = {}
    for (a, b, c), p in binary.items():
        bin_by.setdefault(a, []).append((b, c, p))
    new_lex, new_bin = dict(lex), dict(binary)
    for a in unit:
        for b, w in close(a).items():
            if b == a:
                continue
            for t, p in lex_by.get(b, []):
                new_lex[(a, t)] = new_lex.get((a, t), 0.0) + w * p
            for c, e, p in bin_by.get(b, []):
                new_bin[(a, c, e)] = new_bin.get((a, c, e), 0.0) + w * p
    return new_lex, new_bin
