"""Tokenize rendered documents once, with offsets, and derive the loss mask and field spans from them.

A token is masked (label -100) when it starts before the end of the metadata block, so a token that
a tokenizer merges across the boundary counts as metadata and never leaks into the loss. The Rust
tokenizer is called directly (``encode_batch``, parallel across the batch) and only the few
character positions that matter are mapped to tokens (``char_to_token``), instead of converting every
token's offsets to Python.
"""

from __future__ import annotations

from typing import Any, Sequence


def _first_token_at_or_after(enc, start: int, stop: int) -> int | None:
    for c in range(start, stop):
        t = enc.char_to_token(c)
        if t is not None:
            return t
    return None


def _last_token_before(enc, end: int, floor: int) -> int | None:
    for c in range(end - 1, floor - 1, -1):
        t = enc.char_to_token(c)
        if t is not None:
            return t
    return None


def _encode(tokenizer, docs: Sequence[str], field_spans: Sequence[Sequence[tuple[int, int]]], block_ends: Sequence[int]):
    """Per document: (token ids without specials, number of masked leading tokens, token start of each field)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow tokenizer: full offsets
        raw = tokenizer(list(docs), add_special_tokens=False, return_offsets_mapping=True)
        for ids, offs, spans, end in zip(raw["input_ids"], raw["offset_mapping"], field_spans, block_ends):
            n_masked = sum(1 for o in offs if o[0] < end)
            yield ids, n_masked, [None if e <= s else next((k for k, o in enumerate(offs) if o[0] >= s), n_masked) for s, e in spans]
        return
    for enc, spans, end in zip(backend.encode_batch(list(docs), add_special_tokens=False), field_spans, block_ends):
        # Tokens 0..last start before `end`; the token holding char end-1 may run past it (masked too).
        last = _last_token_before(enc, end, 0) if end > 0 else None
        n_masked = 0 if last is None else last + 1
        starts: list[int | None] = []
        for s, e in spans:
            if e <= s:
                starts.append(None)  # a field left out: an empty span, placed by _token_spans
                continue
            t = _first_token_at_or_after(enc, s, e)
            starts.append(n_masked if t is None else t)
        yield enc.ids, n_masked, starts


def _token_spans(starts: Sequence[int | None], n_masked: int, shift: int) -> list[list[int]]:
    """Token spans of the fields: a shown field runs to the next shown field's start (the last to the end of the block);
    a field left out is the empty span at the next shown field's start."""
    out: list[list[int]] = []
    nxt = n_masked
    for s in reversed(starts):
        if s is None:
            out.append([nxt + shift, nxt + shift])
        else:
            out.append([s + shift, nxt + shift])
            nxt = s
    return out[::-1]


def encode_batch(tokenizer, docs: Sequence[str], field_spans: Sequence[Sequence[tuple[int, int]]], block_ends: Sequence[int],
                 add_bos: bool = True, add_eos: bool = True) -> dict[str, list[Any]]:
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    shift = 1 if add_bos else 0
    out: dict[str, list[Any]] = {"input_ids": [], "labels": [], "attention_mask": [], "meta_spans": []}
    for ids, n_masked, starts in _encode(tokenizer, docs, field_spans, block_ends):
        meta = _token_spans(starts, n_masked, shift)
        labels = [-100] * n_masked + list(ids[n_masked:])
        ids = list(ids)
        if add_bos:
            ids.insert(0, bos)
            labels.insert(0, -100)
        if add_eos:
            ids.append(eos)
            labels.append(eos)
        out["input_ids"].append(ids)
        out["labels"].append(labels)
        out["attention_mask"].append([1] * len(ids))
        out["meta_spans"].append(meta)
    return out


def encode_arrow(tokenizer, docs: Sequence[str], field_spans: Sequence[Sequence[tuple[int, int]]], block_ends: Sequence[int]) -> dict[str, Any]:
    """The same encoding as ``encode_batch`` (with bos and eos) as Arrow list arrays built from flat numpy buffers."""
    import numpy as np
    import pyarrow as pa

    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    flat: list[int] = []
    offsets = [0]
    masked: list[int] = []
    metas = []
    for ids, n_masked, starts in _encode(tokenizer, docs, field_spans, block_ends):
        flat.append(bos)
        flat.extend(ids)
        flat.append(eos)
        offsets.append(len(flat))
        masked.append(n_masked)
        metas.append(_token_spans(starts, n_masked, 1))
    ids_np = np.asarray(flat, dtype=np.int32)
    labels = ids_np.copy()
    off = np.asarray(offsets, dtype=np.int32)
    for start, n in zip(off[:-1], masked):
        labels[start:start + 1 + n] = -100  # bos and the metadata block
    return {"input_ids": pa.ListArray.from_arrays(pa.array(off), pa.array(ids_np)),
            "labels": pa.ListArray.from_arrays(pa.array(off), pa.array(labels)),
            "attention_mask": pa.ListArray.from_arrays(pa.array(off), pa.array(np.ones(len(ids_np), np.int8))),
            "meta_spans": pa.array(metas, type=pa.list_(pa.list_(pa.int32())))}
