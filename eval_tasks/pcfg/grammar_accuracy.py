"""Grammar accuracy: sample continuations of held-out prompts and check whole sequences with CYK."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from metacond.data_builders.pcfg.inference import PCFGInference

from .prompts import PCFGLayout, batched

DEFAULT_LENGTHS = (1, 2, 5, 10, 20, 50)


@torch.no_grad()
def sample_continuations(model, layout: PCFGLayout, prompts: Sequence[Sequence[int]], metadata: Sequence[Sequence[int]] | None, depth: int,
                         max_new_tokens: int, greedy: bool = False, seed: int = 0, batch_size: int = 512) -> list[tuple[list[int] | None, bool]]:
    """Terminal continuations (None if the model emitted a non-terminal) and whether <eos> ended them."""
    model.eval()
    dev = next(model.parameters()).device
    torch.manual_seed(seed)
    results = []
    for s, e in batched(len(prompts), batch_size):
        # Prompts of one batch share their length, so no padding is needed.
        ids = torch.tensor([layout.prefix(None if metadata is None else metadata[i], depth) + layout.terminal_ids(prompts[i]) for i in range(s, e)], device=dev)
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=not greedy,
                             temperature=None if greedy else 1.0, top_k=0 if not greedy else None, top_p=None if greedy else 1.0,
                             eos_token_id=layout.eos, pad_token_id=layout.pad, use_cache=True)
        for row in gen[:, ids.shape[1]:].tolist():
            results.append(layout.to_terminals(row))
    return results


def prompt_index(terminals: Sequence[Sequence[int]], L: int, n_prompts: int) -> list[int]:
    """The held-out sequences whose first L terminals serve as prompts (the same for every model and baseline)."""
    return [i for i, t in enumerate(terminals) if len(t) > L][:n_prompts]


def unigram_grammar_accuracy(grammar, terminals: list[list[int]], probs: np.ndarray, lengths: Sequence[int], n_prompts: int,
                             inference: PCFGInference, seed: int = 0) -> dict[int, float]:
    """Trivial baseline: continue the same prompts with i.i.d. draws from the unigram distribution until <eos>;
    the fraction CYK accepts is what a model with no grammar at all scores."""
    rng = np.random.default_rng(seed)
    cap = grammar.max_yield() + 1
    eos = len(probs) - 1
    out = {}
    for L in lengths:
        idx = prompt_index(terminals, L, n_prompts)
        if len(idx) < 10:
            continue
        seqs = []
        for i in idx:
            draw = rng.choice(len(probs), size=cap - L, p=probs)
            stop = np.flatnonzero(draw == eos)
            seqs.append(list(terminals[i][:L]) + draw[: stop[0]].tolist() if len(stop) else None)
        ok = [s for s in seqs if s is not None]
        out[L] = float(np.sum(inference.accepts(ok)) / len(seqs)) if ok else 0.0
    return out


def grammar_accuracy(model, grammar, terminals: list[list[int]], metadata: np.ndarray, depth: int, lengths: Sequence[int] = DEFAULT_LENGTHS,
                     n_prompts: int = 100, greedy: bool = False, with_metadata: bool = False, inference: PCFGInference | None = None,
                     seed: int = 0) -> dict[str, Any]:
    """Fraction of prompt+continuation sequences the grammar accepts (for some j), per prompt length L."""
    layout = PCFGLayout(grammar)
    inf = inference or PCFGInference(grammar)
    cap = grammar.max_yield() + 1
    rows: list[dict[str, Any] | None] = []
    for L in lengths:
        idx = prompt_index(terminals, L, n_prompts)
        if len(idx) < 10:
            rows.append(None)
            continue
        prompts = [terminals[i][:L] for i in idx]
        meta = [metadata[i] for i in idx] if with_metadata else None
        outs = sample_continuations(model, layout, prompts, meta, depth if with_metadata else 0, max_new_tokens=cap - L, greedy=greedy, seed=seed + L)
        full = [p + c if (c is not None and ended) else None for p, (c, ended) in zip(prompts, outs)]
        ok_idx = [i for i, f in enumerate(full) if f is not None]
        accepted = np.zeros(len(full), bool)
        consistent = np.zeros(len(full), bool)
        if ok_idx:
            seqs = [f for f in full if f is not None]  # full[i] for i in ok_idx
            accepted[ok_idx] = inf.accepts(seqs)
            if with_metadata and depth:
                consistent[ok_idx] = inf.accepts(seqs, [tuple(metadata[idx[i]][:depth]) for i in ok_idx])
        acc = float(accepted.mean())
        row = {"L": L, "n": len(full), "accuracy": acc, "se": float(np.sqrt(acc * (1 - acc) / len(full))),
               "no_eos_or_bad_token": int(sum(f is None for f in full)),
               "mean_generated_length": float(np.mean([len(f) - L for f in full if f is not None])) if ok_idx else 0.0,
               # Per prompt (the same prompts for every model), for paired comparisons.
               "items": {"index": list(map(int, idx)), "accepted": accepted.astype(int).tolist()}}
        if with_metadata and depth:
            row["consistent_with_given_metadata"] = float(consistent.mean())
        rows.append(row)
    return {"lengths": list(lengths), "with_metadata": with_metadata, "greedy": greedy, "rows": rows}
