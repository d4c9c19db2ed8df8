"""Next-token loss on held-out sequences (terminals and ``<eos>`` only), with and without metadata,
beside the Bayes-optimal loss of the same prefix condition from the inside algorithm."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from metacond.data_builders.pcfg.inference import PCFGInference

from .prompts import PCFGLayout, batched, pad_batch

EARLY_POSITIONS = 10  # positions t <= 10 are "early context" (the paper's mechanism: a deficit there)
POSITION_PLOT = 40  # positions kept per sequence for the per-position figure


@torch.no_grad()
def model_token_nll(model, layout: PCFGLayout, terminals: Sequence[Sequence[int]], metadata: Sequence[Sequence[int]] | None, depth: int,
                    batch_size: int = 64) -> list[np.ndarray]:
    """Per sequence, -log p of each terminal and of <eos> (length n+1) under the given prefix condition."""
    model.eval()
    dev = next(model.parameters()).device
    out: list[np.ndarray] = []
    P = layout.prefix_len
    for s, e in batched(len(terminals), batch_size):
        seqs = [layout.prefix(None if metadata is None else metadata[i], depth) + layout.terminal_ids(terminals[i]) + [layout.eos] for i in range(s, e)]
        ids, att = pad_batch(seqs, layout.pad)
        ids_t, att_t = torch.from_numpy(ids).to(dev), torch.from_numpy(att).to(dev)
        logp = torch.log_softmax(model(input_ids=ids_t, attention_mask=att_t).logits.float(), -1)
        lp = -logp[:, :-1].gather(-1, ids_t[:, 1:, None])[..., 0].cpu().numpy()
        for b, i in enumerate(range(s, e)):
            out.append(lp[b, P - 1 : P + len(terminals[i])].astype(np.float64))  # predictions of x_1..x_n and <eos>
    return out


def model_sequence_nll(model, layout: PCFGLayout, terminals: Sequence[Sequence[int]], metadata: Sequence[Sequence[int]] | None, depth: int,
                       batch_size: int = 64) -> np.ndarray:
    """[N] summed -log p of the terminals and <eos> of each sequence under the given prefix condition."""
    return np.array([x.sum() for x in model_token_nll(model, layout, terminals, metadata, depth, batch_size)])


def bayes_token_nll(inference: PCFGInference, terminals: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """Per sequence, the Bayes-optimal -log p of each terminal and <eos> with nothing known of j."""
    return [inference.token_log_losses(t) for t in terminals]


def _by_position(per_token: list[np.ndarray], k: int = POSITION_PLOT) -> np.ndarray:
    out = np.full((len(per_token), k), np.nan)
    for i, x in enumerate(per_token):
        m = min(k, len(x) - 1)  # terminals only: <eos> sits at a sequence-dependent position
        out[i, :m] = x[:m]
    return out


def evaluate_loss(model, grammar, terminals: list[list[int]], metadata: list[list[int]], depth: int, inference: PCFGInference | None = None,
                  bayes_tokens: list[np.ndarray] | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Mean nats per scored token, model and Bayes, under 'masked' and (if depth > 0) 'metadata' prefixes.

    ``items`` keeps per-sequence sums (and early/late splits and per-position losses of the masked
    condition) for paired comparisons between models scored on these same sequences.
    """
    layout = PCFGLayout(grammar)
    inf = inference or PCFGInference(grammar)
    n = np.array([len(t) + 1 for t in terminals])
    ntok = int(n.sum())
    res: dict[str, Any] = {"sequences": len(terminals), "scored_tokens": ntok, "metadata_depth": depth}
    items: dict[str, Any] = {"tokens": n.tolist()}
    conditions = [("masked", None, 0)] + ([("metadata", metadata, depth)] if depth > 0 else [])
    for name, meta, dm in conditions:
        per_tok = model_token_nll(model, layout, terminals, meta, dm, batch_size)
        nll = np.array([x.sum() for x in per_tok])
        bayes = -inf.log_prob(terminals, None if meta is None else [tuple(m[:dm]) for m in meta])
        per_seq_excess = (nll - bayes) / n
        items[f"model_{name}"], items[f"bayes_{name}"] = nll.tolist(), bayes.tolist()
        res[name] = {
            "model_loss": float(nll.sum() / ntok), "bayes_loss": float(bayes.sum() / ntok), "excess_loss": float((nll.sum() - bayes.sum()) / ntok),
            "excess_loss_se": float(per_seq_excess.std(ddof=1) / np.sqrt(len(terminals))) if len(terminals) > 1 else 0.0,
        }
        if name == "masked":
            items["model_masked_early"] = [float(x[:EARLY_POSITIONS].sum()) for x in per_tok]
            items["model_masked_by_position"] = _by_position(per_tok).tolist()
            if bayes_tokens is not None:
                excess = _by_position(per_tok) - _by_position(bayes_tokens)
                res["masked"]["excess_by_position"] = np.nanmean(excess, 0).tolist()
                early = np.array([min(EARLY_POSITIONS, len(x)) for x in per_tok])
                res["masked"]["excess_early"] = float((np.array(items["model_masked_early"]).sum()
                                                       - sum(float(b[:EARLY_POSITIONS].sum()) for b in bayes_tokens)) / early.sum())
    if depth > 0:
        # Paired over sequences: how much the given metadata lowers the loss, for the model and for Bayes.
        gain = (np.array(items["model_masked"]) - np.array(items["model_metadata"])) / n
        res["metadata_gain"] = {"model": float((np.sum(items["model_masked"]) - np.sum(items["model_metadata"])) / ntok),
                                "model_se": float(gain.std(ddof=1) / np.sqrt(len(n))) if len(n) > 1 else 0.0,
                                "bayes": float((np.sum(items["bayes_masked"]) - np.sum(items["bayes_metadata"])) / ntok)}
    res["items"] = items
    return res


def unigram_probs(train_terminals: list[list[int]], n_terms: int) -> np.ndarray:
    """[n_terms + 1] add-one unigram distribution over terminals and <eos> (last) from the training split."""
    counts = np.ones(n_terms + 1)
    for t in train_terminals:
        counts[: n_terms] += np.bincount(t, minlength=n_terms)
        counts[n_terms] += 1
    return counts / counts.sum()


def unigram_loss(train_terminals: list[list[int]], test_terminals: list[list[int]], n_terms: int) -> float:
    """Loss of the unigram model (``unigram_probs``) on the test sequences, nats per scored token."""
    logp = np.log(unigram_probs(train_terminals, n_terms))
    total = sum(-logp[t].sum() - logp[n_terms] for t in map(np.asarray, test_terminals))
    return float(total / sum(len(t) + 1 for t in test_terminals))
