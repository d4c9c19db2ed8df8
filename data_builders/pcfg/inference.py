"""Exact, Bayes-optimal quantities of a grammar: membership, log p(x), log p(x | j), prefix
probabilities, posteriors p(j_d | x_1..x_L) and next-token distributions.

These are the references the PCFG evaluations hold models against. ``metadata`` arguments are the
known leading metadata indices ``(j_0 … j_{m-1})`` (``m <= D``); the rest are marginalized under
the prior. ``None`` or ``()`` means nothing is known.
"""

from __future__ import annotations

from typing import Sequence, cast

import numpy as np

from . import chart
from .cnf import CompiledGrammar, compile_grammar
from .grammar import Grammar, GrammarError

Seq = Sequence[int] | Sequence[str] | np.ndarray


def _logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


class PCFGInference:
    """Membership, exact probabilities and posteriors for one grammar (compiled once)."""

    def __init__(self, grammar: Grammar):
        self.grammar = grammar
        self.c: CompiledGrammar = compile_grammar(grammar)
        with np.errstate(divide="ignore"):
            self._log_prior = np.log(self.c.root_prior)
        self._order = np.argsort(self.c.rank).astype(np.int64)

    # ------------------------------------------------------------------ input handling
    def encode(self, seq: Seq) -> np.ndarray:
        arr = list(seq) if not isinstance(seq, np.ndarray) else seq
        if len(arr) and isinstance(arr[0], str):
            idx = self.c.terminal_index
            names = cast(Sequence[str], arr)  # a sequence of terminal names (``Seq``): its first item is one
            try:
                return np.array([idx[s] for s in names], np.int32)
            except KeyError as e:
                raise GrammarError(f"unknown terminal {e.args[0]!r}") from None
        a = np.asarray(arr, dtype=np.int64)
        if a.size and (a.min() < 0 or a.max() >= self.c.nterm):
            raise GrammarError(f"terminal id out of range [0, {self.c.nterm}): {int(a.min())}..{int(a.max())}")
        return a.astype(np.int32)

    def _pack(self, seqs: Sequence[Seq]) -> tuple[np.ndarray, np.ndarray]:
        enc = [self.encode(s) for s in seqs]
        lens = np.array([len(e) for e in enc], np.int64)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        tokens = np.concatenate(enc).astype(np.int32) if enc else np.zeros(0, np.int32)
        return tokens, offsets

    def root_mask(self, metadata: Sequence[int] | None) -> np.ndarray:
        """Roots consistent with the known leading metadata."""
        if metadata is None or len(metadata) == 0:
            return np.ones(self.c.num_roots, bool)
        m = len(metadata)
        if m > self.grammar.depth:
            raise GrammarError(f"{m} metadata indices given but the grammar has depth D={self.grammar.depth}")
        for d, v in enumerate(metadata):
            if not 0 <= int(v) < self.grammar.num_variants[d]:
                raise GrammarError(f"metadata index j_{d}={v} out of range (level {d} has {self.grammar.num_variants[d]} variants)")
        return np.all(self.c.root_meta[:, :m] == np.asarray(metadata)[None, :], axis=1)

    def _log_prior_given(self, metadata) -> np.ndarray:
        mask = self.root_mask(metadata)
        lp = np.where(mask, self._log_prior, -np.inf)
        return lp - _logsumexp(lp)

    def _args(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        c = self.c
        return (c.nsym, c.lex_ptr, c.lex_sym, c.lex_prob, c.bl_ptr, c.bl_right, c.bl_parent, c.bl_prob)

    # ------------------------------------------------------------------ whole sequences
    def root_log_inside(self, seqs: Sequence[Seq], probs: bool = True) -> np.ndarray:
        """[B, R] log p(x | root r) (membership only: 0 / -inf when ``probs=False``)."""
        tokens, offsets = self._pack(seqs)
        return chart.batch_root_inside(tokens, offsets, *self._args(), self.c.root_sym, probs)

    def accepts(self, seqs: Sequence[Seq], metadata: Sequence[Sequence[int] | None] | Sequence[int] | None = None) -> np.ndarray:
        """CYK membership: is x derivable for some j (consistent with the given metadata)?"""
        r = self.root_log_inside(seqs, probs=False) > -np.inf
        masks = self._masks(metadata, len(seqs))
        return np.any(r & masks, axis=1)

    def log_prob(self, seqs: Sequence[Seq], metadata=None) -> np.ndarray:
        """Exact log p(x | known metadata), marginal over the unknown levels of j. -inf if rejected."""
        li = self.root_log_inside(seqs, probs=True)
        lp = np.stack([self._log_prior_given(m) for m in self._meta_list(metadata, len(seqs))]) if len(seqs) else np.zeros((0, self.c.num_roots))
        return _logsumexp(li + lp, axis=1)

    def log_prob_given_j(self, seqs: Sequence[Seq]) -> np.ndarray:
        """[B, R] log p(x | j) for every full metadata vector; rows of ``self.c.root_meta`` name them."""
        return self.root_log_inside(seqs, probs=True)

    def chart_size(self, seqs: Sequence[Seq]) -> np.ndarray:
        """[B, 2]: non-empty chart cells and stored (cell, symbol) entries of each sequence."""
        tokens, offsets = self._pack(seqs)
        return chart.batch_chart_size(tokens, offsets, *self._args())

    def _meta_list(self, metadata, n):
        if metadata is None:
            return [None] * n
        if len(metadata) and not isinstance(metadata[0], (list, tuple, np.ndarray)) and metadata[0] is not None:
            return [tuple(metadata)] * n  # one metadata prefix for every sequence
        if len(metadata) == 0:
            return [None] * n
        if len(metadata) != n:
            raise GrammarError(f"{len(metadata)} metadata entries for {n} sequences")
        return list(metadata)

    def _masks(self, metadata, n):
        return np.stack([self.root_mask(m) for m in self._meta_list(metadata, n)]) if n else np.zeros((0, self.c.num_roots), bool)

    # ------------------------------------------------------------------ prefixes
    def _scan(self, seq: Seq, with_next: bool):
        if self.c.left_recursive:
            raise GrammarError("prefix probabilities need a grammar without left recursion (A =>+ A …)")
        x = self.encode(seq)
        c = self.c
        return chart.prefix_scan(x, c.nsym, c.nterm, c.lex_ptr, c.lex_sym, c.lex_prob, c.bl_ptr, c.bl_right, c.bl_parent, c.bl_prob,
                                 c.lc_ptr, c.lc_parent, c.lc_prob, c.rank, self._order, c.root_sym, with_next)

    def prefix_log_probs(self, seq: Seq, metadata=None) -> np.ndarray:
        """[n+1]: log P(x_1..x_t is a prefix | metadata) for t = 0..n (summed over continuations)."""
        pre, _, _ = self._scan(seq, False)
        return _logsumexp(pre + self._log_prior_given(metadata)[None, :], axis=1)

    def posterior(self, seq: Seq, metadata=None) -> list[np.ndarray]:
        """Exact p(j_d | x_1..x_L [, known metadata]) for every level d and L = 0..n: list of [n+1, K_d].

        Row L conditions on the first L terminals as a *prefix* (the sequence may continue), the
        quantity a model sees after L tokens.
        """
        pre, _, _ = self._scan(seq, False)
        lj = pre + self._log_prior_given(metadata)[None, :]
        post = np.exp(lj - _logsumexp(lj, axis=1)[:, None])
        out = []
        for d, k in enumerate(self.grammar.num_variants):
            onehot = self.c.root_meta[:, d][None, :] == np.arange(k)[:, None]  # [K, R]
            out.append(post @ onehot.T.astype(float))
        return out

    def next_token_distribution(self, seq: Seq, metadata=None) -> np.ndarray:
        """[n+1, T+1]: p(x_{t+1} = a | x_1..x_t, metadata) for t = 0..n; the last column is <eos>.

        Rows whose prefix is impossible under the grammar (and metadata) are NaN: nothing is defined there.
        """
        pre, inside, nxt = self._scan(seq, True)
        lp = self._log_prior_given(metadata)
        denom = _logsumexp(pre + lp[None, :], axis=1)  # [n+1]
        n = pre.shape[0] - 1
        out = np.full((n + 1, self.c.nterm + 1), np.nan)
        ok = np.isfinite(denom)
        out[ok, : self.c.nterm] = np.exp(_logsumexp(nxt[ok] + lp[None, None, :], axis=2) - denom[ok, None])
        out[ok, -1] = np.exp(_logsumexp(inside[ok] + lp[None, :], axis=1) - denom[ok])
        if ok[0]:
            out[0, -1] = 0.0  # no empty sequences
        return out

    def token_log_losses(self, seq: Seq, metadata=None) -> np.ndarray:
        """[n+1]: Bayes-optimal -log p of each terminal and of the final <eos> given everything before."""
        x = self.encode(seq)
        dist = self.next_token_distribution(x, metadata)
        n = len(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            ll = np.log(np.concatenate([dist[np.arange(n), x], [dist[n, -1]]]))
        return -np.nan_to_num(ll, nan=-np.inf)


# ---------------------------------------------------------------------- how readable is the latent?
FULL = "full"
# A (level, L) cell can separate models only if the Bayes classifier is clearly above chance and not
# saturated; fixed before any study run and shared by `metacond pcfg bayes-table` and the study's verdicts.
INFORMATIVE_MIN_GAIN = 0.10  # Bayes accuracy >= chance + 0.10
INFORMATIVE_MAX_ACCURACY = 0.97  # ... and <= 0.97


def prompt_positions(n: int, lengths: Sequence) -> list[int | None]:
    """Prompt length for each requested L of a sequence of n terminals ('full' = n; None if n < L)."""
    return [n if L == FULL else (int(L) if int(L) <= n else None) for L in lengths]


def bayes_classifier_correct(inference: PCFGInference, seqs: Sequence[Seq], metadata: np.ndarray, lengths: Sequence) -> np.ndarray:
    """[levels, len(lengths), N] int8: is argmax_k p(j_d = k | x_1..x_L) the true j_d (-1 where the sequence is shorter than L)."""
    D = inference.grammar.depth
    out = np.full((D, len(lengths), len(seqs)), -1, np.int8)
    for i, t in enumerate(seqs):
        post = inference.posterior(t)
        for li, L in enumerate(prompt_positions(len(t), lengths)):
            if L is not None:
                for d in range(D):
                    out[d, li, i] = int(np.argmax(post[d][L]) == metadata[i, d])
    return out


def is_informative(bayes_accuracy: float, chance: float) -> bool:
    return bayes_accuracy >= chance + INFORMATIVE_MIN_GAIN and bayes_accuracy <= INFORMATIVE_MAX_ACCURACY


def bayes_table(grammar: Grammar, sequences: int = 2000, lengths: Sequence = (1, 2, 5, 10, 20, 50, FULL), seed: int = 0) -> dict:
    """Bayes probe accuracy per (level, L) on freshly sampled sequences, with chance and the informative-cell flags."""
    from .sampler import sample

    b = sample(grammar, sequences, seed=seed)
    seqs = [np.asarray(s) for s in np.split(b.tokens, b.offsets[1:-1])]
    correct = bayes_classifier_correct(PCFGInference(grammar), seqs, b.metadata, lengths)
    chance = [float(np.max(p)) for p in grammar.priors]
    acc = [[float(correct[d, li][correct[d, li] >= 0].mean()) if (correct[d, li] >= 0).any() else None for li in range(len(lengths))]
           for d in range(grammar.depth)]
    return {"grammar": grammar.summary(), "sequences": sequences, "lengths": [str(L) for L in lengths], "chance": chance, "accuracy": acc,
            "informative": [[a is not None and is_informative(a, chance[d]) for a in row] for d, row in enumerate(acc)],
            "length_min_mean_max": [int(b.lengths().min()), round(float(b.lengths().mean()), 1), int(b.lengths().max())]}


def format_bayes_table(t: dict) -> str:
    """Markdown; informative cells are bold."""
    head = "| level | chance | " + " | ".join(f"L={L}" for L in t["lengths"]) + " |"
    lines = [head, "|---|---|" + "---|" * len(t["lengths"])]
    for d, row in enumerate(t["accuracy"]):
        cells = [("—" if a is None else (f"**{a:.3f}**" if t["informative"][d][li] else f"{a:.3f}")) for li, a in enumerate(row)]
        lines.append(f"| {d} | {t['chance'][d]:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
