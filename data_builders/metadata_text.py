"""Documents with a metadata block before the text: token ids, loss mask and per-field spans.

``URL: …\\nCOUNTRY: …\\nCONTINENT: …\\n\\n`` + article. Every field line and the body are tokenized
on their own and concatenated, so each field is an exact token span (``meta_spans``) that a
training-time schedule can remove without re-tokenizing, and the loss mask covers the block exactly.
"""

from __future__ import annotations

from typing import Any, Sequence


def encode_document(tokenizer, fields: Sequence[tuple[str, str]], body: str, line_template: str = "{name}: {value}\n",
                    separator: str = "\n", add_bos: bool = True, add_eos: bool = True) -> dict[str, Any]:
    ids: list[int] = []
    labels: list[int] = []
    spans: list[list[int]] = []
    if add_bos:
        ids.append(tokenizer.bos_token_id)
        labels.append(-100)

    def enc(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    for name, value in fields:
        piece = enc(line_template.format(name=name, value=value))
        spans.append([len(ids), len(ids) + len(piece)])
        ids += piece
        labels += [-100] * len(piece)
    if fields and separator:
        # The blank line belongs to the block: it goes with the last field so removing every field leaves plain text.
        sep = enc(separator)
        spans[-1][1] += len(sep)
        ids += sep
        labels += [-100] * len(sep)
    body_ids = enc(body)
    ids += body_ids
    labels += body_ids
    if add_eos:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids), "meta_spans": spans}
