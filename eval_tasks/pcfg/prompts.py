"""Token layouts the PCFG models were trained on: ``<bos> m_0 … m_{D-1} x_1 … x_n <eos>``."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from metacond.modeling.tokenizer import metadata_token, pcfg_vocab


class PCFGLayout:
    def __init__(self, grammar):
        self.grammar = grammar
        self.vocab = pcfg_vocab(grammar)
        self.D = grammar.depth
        self.bos, self.eos, self.mask, self.pad = (self.vocab[t] for t in ("<bos>", "<eos>", "<mask>", "<pad>"))
        self.term_base = self.vocab[grammar.terminals[0]]
        self.n_terms = len(grammar.terminals)

    def prefix(self, metadata: Sequence[int] | None, depth: int) -> list[int]:
        """``<bos>`` and the D metadata slots: the first ``depth`` show ``metadata``, the rest ``<mask>``."""
        slots = [self.mask] * self.D
        if metadata is not None:
            for d in range(min(depth, self.D)):
                slots[d] = self.vocab[metadata_token(d, int(metadata[d]))]
        return [self.bos] + slots

    def terminal_ids(self, terminals: Sequence[int]) -> list[int]:
        return [self.term_base + int(t) for t in terminals]

    def to_terminals(self, ids: Sequence[int]) -> tuple[list[int] | None, bool]:
        """Generated ids up to ``<eos>`` as terminal indices; (None, …) if a non-terminal token appears first."""
        out: list[int] = []
        for t in ids:
            t = int(t)
            if t == self.eos:
                return out, True
            k = t - self.term_base
            if not 0 <= k < self.n_terms:
                return None, False
            out.append(k)
        return out, False

    @property
    def prefix_len(self) -> int:
        return 1 + self.D


def batched(n: int, size: int):
    for s in range(0, n, size):
        yield s, min(n, s + size)


def pad_batch(seqs: list[list[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    L = max(len(s) for s in seqs)
    ids = np.full((len(seqs), L), pad, np.int64)
    att = np.zeros((len(seqs), L), np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        att[i, : len(s)] = 1
    return ids, att
