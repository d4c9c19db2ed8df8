"""Train-time metadata schedules: who sees metadata, which fields drop, and the MeCo cooldown.

Builders write each example's metadata fields as token spans (``meta_spans``: ``[[start, end), …]``).
A schedule decides per *stream position* — the example's index in the run's global example order —
so the decision is the same on every worker and after a resume, and the cooldown begins exactly at
the first example of step ``cooldown_start_step``. Dropping a field either replaces its tokens by
``<mask>`` (``mask`` mode: fixed-layout prefixes such as the PCFG's) or removes them (``remove``
mode: text templates such as ``COUNTRY: ng\\n``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metacond import MetacondError

MODES = ("mask", "remove")


@dataclass
class MetadataSchedule:
    fraction: float = 1.0
    field_dropout: list[float] = field(default_factory=list)
    cooldown_start_position: int | None = None
    mode: str = "remove"
    mask_token_id: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise MetacondError(f"metadata mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "mask" and self.mask_token_id is None:
            raise MetacondError("metadata mode 'mask' needs a tokenizer with a mask token")
        if not 0.0 <= self.fraction <= 1.0:
            raise MetacondError(f"metadata_fraction must be in [0, 1], got {self.fraction}")
        if any(not 0.0 <= p <= 1.0 for p in self.field_dropout):
            raise MetacondError(f"metadata_field_dropout values must be in [0, 1], got {self.field_dropout}")

    def keep_mask(self, position: int, n_fields: int) -> np.ndarray:
        """Which of an example's fields survive at this stream position."""
        if self.cooldown_start_position is not None and position >= self.cooldown_start_position:
            return np.zeros(n_fields, bool)
        if self.fraction >= 1.0 and not any(self.field_dropout):
            return np.ones(n_fields, bool)  # nothing random to decide: skip the per-example generator
        rng = np.random.default_rng([self.seed, position, 0xC0FFEE])
        if rng.random() >= self.fraction:
            return np.zeros(n_fields, bool)
        p = np.zeros(n_fields)
        if self.field_dropout:
            drop = self.field_dropout if len(self.field_dropout) > 1 else self.field_dropout * n_fields
            if len(drop) < n_fields:
                raise MetacondError(f"metadata_field_dropout has {len(drop)} values but examples have {n_fields} metadata fields")
            p = np.asarray(drop[:n_fields])
        return rng.random(n_fields) >= p

    def apply(self, example: dict[str, Any], position: int) -> dict[str, Any]:
        spans = example.get("meta_spans") or []
        ex = {k: example[k] for k in ("input_ids", "labels", "attention_mask")}
        keep = self.keep_mask(position, len(spans)) if spans else np.zeros(0, bool)
        ids0 = ex["input_ids"]
        shown = any(self._field_visible(ids0, s) for s, k in zip(spans, keep) if k)
        if spans and not keep.all():
            ids, labels, att = list(ex["input_ids"]), list(ex["labels"]), list(ex["attention_mask"])
            for (s, e), k in sorted(zip(map(tuple, spans), keep), reverse=True):
                if k:
                    continue
                if self.mode == "mask":
                    ids[s:e] = [self.mask_token_id] * (e - s)
                    labels[s:e] = [-100] * (e - s)
                else:
                    del ids[s:e], labels[s:e], att[s:e]
            ex = {"input_ids": ids, "labels": labels, "attention_mask": att}
        ex["has_metadata"] = bool(shown)
        return ex

    def _field_visible(self, ids, span) -> bool:
        s, e = span
        if e <= s:
            return False
        m = self.mask_token_id
        return m is None or any(ids[t] != m for t in range(s, e))


def cooldown_start_step(max_steps: int, cooldown_fraction: float) -> int | None:
    """First optimizer step (0-based) of the cooldown: the last ``cooldown_fraction`` of steps."""
    if cooldown_fraction <= 0.0:
        return None
    if cooldown_fraction >= 1.0:
        raise MetacondError(f"cooldown_fraction must be < 1, got {cooldown_fraction}")
    return max_steps - int(round(cooldown_fraction * max_steps))
