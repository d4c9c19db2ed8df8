"""The Trainer used by every metacond run: a fixed data order, token accounting, metadata bookkeeping."""

from __future__ import annotations

from collections import defaultdict

import torch
from transformers import Trainer


class MetacondTrainer(Trainer):
    """``Trainer`` that reads the scheduled stream in order and records what each step saw.

    The stream (``ScheduledDataset``) already holds the shuffled order, so the sampler is
    sequential: the data seen by step ``s`` is a function of the seed alone, including after a resume.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scored_tokens = 0
        self.examples_by_step: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # step -> [examples, with metadata]

    def _get_train_sampler(self, train_dataset=None):
        ds = train_dataset if train_dataset is not None else self.train_dataset
        if isinstance(ds, torch.utils.data.IterableDataset):
            return None
        return torch.utils.data.SequentialSampler(ds)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        n_meta = inputs.pop("num_with_metadata", None)
        n_ex = inputs.pop("num_examples", None)
        if model.training:
            rec = self.examples_by_step[self.state.global_step]
            rec[0] += int(n_ex.sum()) if n_ex is not None else 0
            rec[1] += int(n_meta.sum()) if n_meta is not None else 0
            self.scored_tokens += (inputs["labels"][..., 1:] != -100).sum()
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
