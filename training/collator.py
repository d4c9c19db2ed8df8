"""Collation that keeps the builders' loss masks: right padding, or padding-free packing.

Packed rows put several documents on one row with ``position_ids`` restarting at 0 for each and no
attention mask; transformers then builds a block-diagonal causal mask from the position ids, so no
token attends across documents (tests check logits against documents run one at a time). The first
label of every packed segment is -100: it would otherwise be "predicted" from the previous document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from metacond import MetacondError


@dataclass
class MetadataCollator:
    pad_token_id: int
    packing: bool = False
    block_size: int | None = None
    max_length: int | None = None
    pad_to_multiple_of: int | None = None

    def __post_init__(self) -> None:
        self.truncated = 0

    def _check(self, f: dict[str, Any]) -> tuple[list[int], list[int]]:
        ids, labels = f["input_ids"], f["labels"]
        if len(ids) != len(labels):
            raise MetacondError(f"labels ({len(labels)}) are not aligned with input_ids ({len(ids)})")
        if self.max_length is not None and len(ids) > self.max_length and not (self.packing and self.block_size):
            ids, labels = ids[: self.max_length], labels[: self.max_length]
            self.truncated += 1
        return ids, labels

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        docs = [self._check(f) for f in features]
        meta = [int(bool(f.get("has_metadata", False))) for f in features]
        if self.packing:
            out, row_of = self._packed(docs)
        else:
            out, row_of = self._padded(docs, features), list(range(len(docs)))
        # Per-row counts (not scalars), so batch slicing across processes keeps them with their rows.
        rows = out["input_ids"].shape[0]
        out["num_examples"] = torch.bincount(torch.tensor(row_of), minlength=rows)
        out["num_with_metadata"] = torch.bincount(torch.tensor(row_of), weights=torch.tensor(meta, dtype=torch.float), minlength=rows).long()
        return out

    def _padded(self, docs, features) -> dict[str, torch.Tensor]:
        L = max(len(d[0]) for d in docs)
        if self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = np.full((len(docs), L), self.pad_token_id, dtype=np.int64)
        labels = np.full((len(docs), L), -100, dtype=np.int64)
        att = np.zeros((len(docs), L), dtype=np.int64)
        for r, ((i, l), f) in enumerate(zip(docs, features)):
            n = len(i)
            ids[r, :n] = i
            labels[r, :n] = l
            att[r, :n] = f["attention_mask"][:n] if "attention_mask" in f else 1
        return {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels), "attention_mask": torch.from_numpy(att)}

    def _packed(self, docs) -> tuple[dict[str, torch.Tensor], list[int]]:
        if self.block_size:
            # Documents longer than a block are cut into block-sized pieces; pieces fill rows first-fit decreasing.
            pieces, owner = [], []
            for d, (i, l) in enumerate(docs):
                for s in range(0, len(i), self.block_size):
                    pieces.append((i[s:s + self.block_size], l[s:s + self.block_size]))
                    owner.append((d, s))
            where = first_fit_rows([len(i) for i, _ in pieces], self.block_size)
            n_rows = 1 + max(r for r, _ in where)
            rows: list[list[tuple[list[int], list[int]]]] = [[] for _ in range(n_rows)]
            row_of = [0] * len(docs)
            for k in sorted(range(len(pieces)), key=lambda k: where[k]):
                rows[where[k][0]].append(pieces[k])
                if owner[k][1] == 0:
                    row_of[owner[k][0]] = where[k][0]  # a document counts in the row where it starts
            width = self.block_size
        else:
            rows = [list(docs)]
            row_of = [0] * len(docs)
            width = sum(len(i) for i, _ in docs)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        pos = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            c = 0
            for i, l in row:
                n = len(i)
                ids[r, c:c + n] = torch.tensor(i)
                lab = torch.tensor(l)
                lab[0] = -100
                labels[r, c:c + n] = lab
                pos[r, c:c + n] = torch.arange(n)
                c += n
            if c < width:  # the tail is its own segment of padding
                pos[r, c:] = torch.arange(width - c)
        return {"input_ids": ids, "labels": labels, "position_ids": pos}, row_of


def first_fit_rows(lengths: list[int], width: int) -> list[tuple[int, int]]:
    """(row, column) of each piece when pieces of these lengths (each <= width) fill rows first-fit decreasing.

    Filling rows in arrival order closes a row whenever the next piece does not fit: with documents a
    little longer than a block, nearly every other row is mostly padding. First-fit decreasing wastes
    at most the tail of the rows it cannot fill, whatever the order of the batch.
    """
    free: list[int] = []
    where: list[tuple[int, int]] = [(0, 0)] * len(lengths)
    for k in sorted(range(len(lengths)), key=lambda k: (-lengths[k], k)):
        n = lengths[k]
        r = next((j for j, f in enumerate(free) if f >= n), None)
        if r is None:
            free.append(width)
            r = len(free) - 1
        where[k] = (r, width - free[r])
        free[r] -= n
    return where
