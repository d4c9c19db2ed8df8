"""Tokenize rendered documents once, with offsets, and derive the loss mask and field spans from them.

A token is masked (label -100) when it starts before the end of the metadata block; so a token that
a tokenizer merges across the boundary counts as metadata and never leaks into the loss.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def encode_batch(tokenizer, docs: Sequence[str], field_spans: Sequence[Sequence[tuple[int, int]]], block_ends: Sequence[int],
                 add_bos: bool = True, add_eos: bool = True) -> dict[str, list[Any]]:
    enc = tokenizer(list(docs), add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    out: dict[str, list[Any]] = {"input_ids": [], "labels": [], "attention_mask": [], "meta_spans": []}
    for ids, offs, spans, end in zip(enc["input_ids"], enc["offset_mapping"], field_spans, block_ends):
        starts = np.fromiter((o[0] for o in offs), dtype=np.int64, count=len(offs))
        shift = 1 if add_bos else 0
        labels = np.asarray(ids, dtype=np.int64)
        labels = np.where(starts < end, -100, labels)
        meta = []
        for s, e in spans:
            a = int(np.searchsorted(starts, s, side="left"))
            b = int(np.searchsorted(starts, e, side="left"))
            meta.append([a + shift, b + shift])
        ids = list(ids)
        lab = labels.tolist()
        if add_bos:
            ids = [bos] + ids
            lab = [-100] + lab
        if add_eos:
            ids = ids + [eos]
            lab = lab + [eos]
        out["input_ids"].append(ids)
        out["labels"].append(lab)
        out["attention_mask"].append([1] * len(ids))
        out["meta_spans"].append(meta)
    return out
