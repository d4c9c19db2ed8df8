"""Batched, vectorized sampling of PCFG sequences.

All sequences of a batch expand together, one derivation layer per step: every nonterminal
occurrence picks a production with one vectorized draw, and the flat symbol array is rebuilt with
``np.repeat``. A leveled grammar needs exactly D steps. Work is split into fixed-size chunks, each
with its own seed derived from ``(seed, chunk index)``, so the data are the same whatever
``num_proc`` is.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from .grammar import Grammar, GrammarError

CHUNK = 2048


@dataclass
class SampleBatch:
    """Sampled sequences as a flat token array with offsets (ragged)."""

    tokens: np.ndarray  # [total] terminal ids
    offsets: np.ndarray  # [n+1]
    metadata: np.ndarray  # [n, D] the latent j of each sequence
    labels: np.ndarray | None = None  # [total, D] ancestor nonterminal id at each level (leveled grammars)

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def sequence(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def as_lists(self) -> list[list[int]]:
        return [self.sequence(i).tolist() for i in range(len(self))]


class _Tables:
    """Padded production tables indexed by (nonterminal, variant)."""

    def __init__(self, g: Grammar):
        self.T = len(g.terminals)
        self.sym_index = {t: i for i, t in enumerate(g.terminals)}
        for i, a in enumerate(g.nonterminals):
            self.sym_index[a] = self.T + i
        nn = len(g.nonterminals)
        kmax = max(g.num_variants) if g.levels else 1
        self.level = np.array([max(g.level_of(a), 0) for a in g.nonterminals], np.int64)
        groups = [[g.rules_for(a, v) if v < (g.num_variants[g.level_of(a)] if g.levels else 1) else [] for v in range(kmax)] for a in g.nonterminals]
        rmax = max(len(rs) for per in groups for rs in per)
        lmax = max(len(r.rhs) for r in g.rules)
        self.cum = np.full((nn, kmax, rmax), 2.0)
        self.rhs = np.zeros((nn, kmax, rmax, lmax), np.int64)
        self.rlen = np.ones((nn, kmax, rmax), np.int64)
        for ai, per in enumerate(groups):
            for v, rs in enumerate(per):
                c = np.cumsum([r.prob for r in rs])
                if len(rs):
                    c[-1] = 1.0 + 1e-12  # a u just below 1 must never fall off the end
                self.cum[ai, v, : len(rs)] = c
                for ri, r in enumerate(rs):
                    self.rlen[ai, v, ri] = len(r.rhs)
                    self.rhs[ai, v, ri, : len(r.rhs)] = [self.sym_index[s] for s in r.rhs]
        self.start = self.sym_index[g.start]
        self.depth = g.depth
        self.priors = g.priors
        self.leveled = g.levels is not None


def _sample_chunk(tab: _Tables, n: int, rng: np.random.Generator, with_labels: bool, max_length: int) -> SampleBatch:
    D = tab.depth
    meta = np.stack([rng.choice(len(p), size=n, p=p) for p in tab.priors], 1) if D else np.zeros((n, 0), np.int64)
    sym = np.full(n, tab.start, np.int64)
    seq = np.arange(n)
    anc = np.zeros((n, 0), np.int64)
    steps = 0
    while True:
        is_nt = sym >= tab.T
        if not is_nt.any():
            break
        steps += 1
        if steps > 10_000:
            raise GrammarError("sampling did not terminate after 10,000 derivation layers")
        nt_idx = np.where(is_nt, sym - tab.T, 0)
        var = meta[seq, tab.level[nt_idx]] if D else np.zeros_like(sym)
        u = rng.random(sym.shape[0])
        choice = (tab.cum[nt_idx, var] < u[:, None]).sum(1)
        lens = np.where(is_nt, tab.rlen[nt_idx, var, choice], 1)
        rep = np.repeat(np.arange(sym.shape[0]), lens)
        pos = np.arange(rep.shape[0]) - np.repeat(np.cumsum(lens) - lens, lens)
        child = tab.rhs[nt_idx[rep], var[rep], choice[rep], pos]
        new_sym = np.where(is_nt[rep], child, sym[rep])
        if with_labels and tab.leveled:
            # Record the level ancestor of every terminal: the expanded nonterminal itself.
            anc = np.concatenate([anc[rep], np.where(is_nt[rep], sym[rep] - tab.T, -1)[:, None]], 1)
        sym, seq = new_sym, seq[rep]
        if not tab.leveled:
            counts = np.bincount(seq, minlength=n)
            if counts.max() > max_length:
                raise _TooLong()
    tokens = sym
    counts = np.bincount(seq, minlength=n)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    labels = anc if (with_labels and tab.leveled) else None
    return SampleBatch(tokens.astype(np.int32), offsets.astype(np.int64), meta.astype(np.int64), labels)


class _TooLong(Exception):
    pass


def _chunk_worker(args):
    g_dict, start, n, seed, with_labels, max_length = args
    g = Grammar.from_dict(g_dict)
    return _sample_chunk_seeded(_Tables(g), start, n, seed, with_labels, max_length)


def _sample_chunk_seeded(tab, chunk_id, n, seed, with_labels, max_length):
    # Recursive plain grammars may overshoot max_length; redraw the whole chunk with the next
    # sub-seed so the result stays a deterministic function of (seed, chunk).
    for attempt in range(100):
        rng = np.random.default_rng([seed, chunk_id, attempt])
        try:
            return _sample_chunk(tab, n, rng, with_labels, max_length)
        except _TooLong:
            if n > 1:
                half = n // 2
                a = _sample_chunk_seeded(tab, chunk_id * 2 + 1_000_003, half, seed, with_labels, max_length)
                b = _sample_chunk_seeded(tab, chunk_id * 2 + 1_000_004, n - half, seed, with_labels, max_length)
                return concat_batches([a, b])
    raise GrammarError(f"could not sample sequences shorter than max_length={max_length}; the grammar's strings are longer")


def concat_batches(parts: list[SampleBatch]) -> SampleBatch:
    toks = np.concatenate([p.tokens for p in parts])
    lens = np.concatenate([p.lengths() for p in parts])
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    meta = np.concatenate([p.metadata for p in parts])
    labels = np.concatenate([p.labels for p in parts]) if all(p.labels is not None for p in parts) else None
    return SampleBatch(toks, offsets, meta, labels)


def sample(g: Grammar, n: int, seed: int = 0, with_labels: bool = False, num_proc: int = 1, max_length: int = 100_000) -> SampleBatch:
    """Sample ``n`` sequences (terminal ids in ``g.terminals`` order) with their latent ``j``."""
    if n < 0:
        raise GrammarError(f"number of sequences must be >= 0, got {n}")
    if n == 0:
        return SampleBatch(np.zeros(0, np.int32), np.zeros(1, np.int64), np.zeros((0, g.depth), np.int64), None)
    jobs = [(c, min(CHUNK, n - c * CHUNK)) for c in range((n + CHUNK - 1) // CHUNK)]
    if num_proc > 1 and len(jobs) > 1:
        gd = g.to_dict()
        with ProcessPoolExecutor(num_proc) as ex:
            parts = list(ex.map(_chunk_worker, [(gd, c, m, seed, with_labels, max_length) for c, m in jobs]))
    else:
        tab = _Tables(g)
        parts = [_sample_chunk_seeded(tab, c, m, seed, with_labels, max_length) for c, m in jobs]
    return concat_batches(parts)
