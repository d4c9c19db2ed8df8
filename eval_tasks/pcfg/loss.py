"""Next-token loss on held-out sequences (terminals and ``<eos>`` only), with and without metadata,
beside the Bayes-optimal loss of the same prefix condition from the inside algorithm."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from metacond.data_builders.pcfg.inference import PCFGInference

from .prompts import PCFGLayout, batched, pad_batch


@torch.no_grad()
def model_sequence_nll(model, layout: PCFGLayout, terminals: Sequence[Sequence[int]], metadata: Sequence[Sequence[int]] | None, depth: int,
                       batch_size: int = 64) -> np.ndarray:
    """[N] summed -log p of the terminals and <eos> of each sequence under the given prefix condition."""
    model.eval()
    dev = next(model.parameters()).device
    out = np.zeros(len(terminals))
    P = layout.prefix_len
    for s, e in batched(len(terminals), batch_size):
        seqs = [layout.prefix(None if metadata is None else metadata[i], depth) + layout.terminal_ids(terminals[i]) + [layout.eos] for i in range(s, e)]
        ids, att = pad_batch(seqs, layout.pad)
        ids_t, att_t = torch.from_numpy(ids).to(dev), torch.from_numpy(att).to(dev)
        logp = torch.log_softmax(model(input_ids=ids_t, attention_mask=att_t).logits.float(), -1)
        tgt = ids_t[:, 1:]
        lp = logp[:, :-1].gather(-1, tgt[..., None])[..., 0]
        scored = att_t[:, 1:].clone()
        scored[:, : P - 1] = 0  # positions predicting metadata slots are not scored
        out[s:e] = -(lp * scored).sum(1).cpu().numpy()
    return out


def evaluate_loss(model, grammar, terminals: list[list[int]], metadata: list[list[int]], depth: int, inference: PCFGInference | None = None,
                  batch_size: int = 64) -> dict[str, Any]:
    """Mean nats per scored token, model and Bayes, under 'masked' and (if depth > 0) 'metadata' prefixes."""
    layout = PCFGLayout(grammar)
    inf = inference or PCFGInference(grammar)
    ntok = sum(len(t) + 1 for t in terminals)
    res: dict[str, Any] = {"sequences": len(terminals), "scored_tokens": ntok, "metadata_depth": depth}
    conditions = [("masked", None, 0)] + ([("metadata", metadata, depth)] if depth > 0 else [])
    per_cond = {}
    for name, meta, dm in conditions:
        nll = model_sequence_nll(model, layout, terminals, meta, dm, batch_size)
        bayes = -inf.log_prob(terminals, None if meta is None else [tuple(m[:dm]) for m in meta])
        per_seq_excess = (nll - bayes) / np.array([len(t) + 1 for t in terminals])
        per_cond[name] = (nll, bayes)
        res[name] = {
            "model_loss": float(nll.sum() / ntok), "bayes_loss": float(bayes.sum() / ntok), "excess_loss": float((nll.sum() - bayes.sum()) / ntok),
            "excess_loss_se": float(per_seq_excess.std(ddof=1) / np.sqrt(len(terminals))) if len(terminals) > 1 else 0.0,
        }
    if depth > 0:
        # Paired over sequences: how much the given metadata lowers the loss, for the model and for Bayes.
        n = np.array([len(t) + 1 for t in terminals])
        gain = (per_cond["masked"][0] - per_cond["metadata"][0]) / n
        res["metadata_gain"] = {"model": float((per_cond["masked"][0] - per_cond["metadata"][0]).sum() / ntok),
                                "model_se": float(gain.std(ddof=1) / np.sqrt(len(n))) if len(n) > 1 else 0.0,
                                "bayes": float((per_cond["masked"][1] - per_cond["metadata"][1]).sum() / ntok)}
    return res


def unigram_loss(train_terminals: list[list[int]], test_terminals: list[list[int]], n_terms: int) -> float:
    """Loss of a unigram model over terminals and <eos> fit on the training split (add-one)."""
    counts = np.ones(n_terms + 1)
    for t in train_terminals:
        counts[: n_terms] += np.bincount(t, minlength=n_terms)
        counts[n_terms] += 1
    logp = np.log(counts / counts.sum())
    total = sum(-logp[t].sum() - logp[n_terms] for t in map(np.asarray, test_terminals))
    return float(total / sum(len(t) + 1 for t in test_terminals))
