"""Linear probes that read the metadata ``j_d`` from a frozen model's hidden states.

The model sees a masked prefix and the first L terminals; the hidden state at the last position of
every layer feeds one multinomial logistic-regression probe per level. The layer is chosen on a
validation split and test accuracy is reported, beside the Bayes-optimal accuracy (argmax of the
exact posterior ``p(j_d | x_1..x_L)`` from the inside algorithm) and chance.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from metacond.data_builders.pcfg.inference import PCFGInference

from .prompts import PCFGLayout, batched, pad_batch

FULL = "full"
DEFAULT_LENGTHS: tuple = (1, 2, 5, 10, 20, 50, 100, FULL)


def _positions(n: int, lengths: Sequence) -> list[int | None]:
    return [n if L == FULL else (L if L <= n else None) for L in lengths]


@torch.no_grad()
def hidden_features(model, layout: PCFGLayout, terminals: Sequence[Sequence[int]], lengths: Sequence = DEFAULT_LENGTHS,
                    batch_size: int = 32, metadata: Sequence[Sequence[int]] | None = None, depth: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features [layers+1, len(lengths), N, H] (NaN where a sequence is shorter than L) and a validity mask [len(lengths), N].

    One forward pass per sequence serves every L: a causal model's state at position t sees tokens <= t only.
    The prefix is masked unless ``metadata``/``depth`` say to show the first ``depth`` indices.
    """
    model.eval()
    dev = next(model.parameters()).device
    n_layers = model.config.num_hidden_layers + 1
    H = model.config.hidden_size
    feats = np.full((n_layers, len(lengths), len(terminals), H), np.nan, np.float32)
    valid = np.zeros((len(lengths), len(terminals)), bool)
    P = layout.prefix_len
    for s, e in batched(len(terminals), batch_size):
        seqs = [layout.prefix(None if metadata is None else metadata[i], depth) + layout.terminal_ids(terminals[i]) for i in range(s, e)]
        ids, att = pad_batch(seqs, layout.pad)
        out = model(input_ids=torch.from_numpy(ids).to(dev), attention_mask=torch.from_numpy(att).to(dev), output_hidden_states=True)
        hs = torch.stack(out.hidden_states).float().cpu().numpy()  # [layers+1, B, T, H]
        for b, i in enumerate(range(s, e)):
            for li, L in enumerate(_positions(len(terminals[i]), lengths)):
                if L is None:
                    continue
                feats[:, li, i] = hs[:, b, P - 1 + L]
                valid[li, i] = True
    return feats, valid


def _fit_probe(x: np.ndarray, y: np.ndarray, k: int, weight_decay: float = 1e-3, iters: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mu) / sd).double()
    yt = torch.from_numpy(y).long()
    w = torch.zeros(x.shape[1], k, dtype=torch.double, requires_grad=True)
    b = torch.zeros(k, dtype=torch.double, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + weight_decay * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy(), mu, sd


def _predict(params, x: np.ndarray) -> np.ndarray:
    w, b, mu, sd = params
    return np.argmax(((x - mu) / sd) @ w + b, axis=1)


def probe_accuracy(feats: np.ndarray, valid: np.ndarray, metadata: np.ndarray, num_variants: Sequence[int], split: np.ndarray,
                   lengths: Sequence = DEFAULT_LENGTHS, min_examples: int = 30) -> dict[str, Any]:
    """``split``: 0 = probe train, 1 = validation (layer choice), 2 = test. Returns accuracies by level and L."""
    out: dict[str, Any] = {"lengths": [str(L) for L in lengths], "levels": []}
    for d, k in enumerate(num_variants):
        rows = []
        for li, L in enumerate(lengths):
            m = valid[li]
            tr, va, te = (m & (split == 0)), (m & (split == 1)), (m & (split == 2))
            if min(tr.sum(), va.sum(), te.sum()) < min_examples or len(np.unique(metadata[tr, d])) < 2:
                rows.append(None)
                continue
            per_layer = []
            for layer in range(feats.shape[0]):
                params = _fit_probe(feats[layer, li, tr], metadata[tr, d], k)
                per_layer.append((float(np.mean(_predict(params, feats[layer, li, va]) == metadata[va, d])),
                                  float(np.mean(_predict(params, feats[layer, li, te]) == metadata[te, d]))))
            best = int(np.argmax([v for v, _ in per_layer]))
            acc = per_layer[best][1]
            rows.append({"L": str(L), "test_accuracy": acc, "test_se": float(np.sqrt(acc * (1 - acc) / te.sum())), "layer": best,
                         "per_layer_test": [t for _, t in per_layer], "n_test": int(te.sum())})
        out["levels"].append(rows)
    return out


def bayes_probe_accuracy(inference: PCFGInference, terminals: Sequence[Sequence[int]], metadata: np.ndarray, test_mask: np.ndarray,
                         lengths: Sequence = DEFAULT_LENGTHS) -> list[list[float | None]]:
    """Accuracy of the Bayes classifier argmax_k p(j_d = k | x_1..x_L) on the probe test sequences, [level][L]."""
    D = inference.grammar.depth
    hits = np.zeros((D, len(lengths)))
    count = np.zeros(len(lengths))
    for i in np.where(test_mask)[0]:
        post = inference.posterior(terminals[i])
        for li, L in enumerate(_positions(len(terminals[i]), lengths)):
            if L is None:
                continue
            count[li] += 1
            for d in range(D):
                hits[d, li] += float(np.argmax(post[d][L]) == metadata[i, d])
    return [[(float(hits[d, li] / count[li]) if count[li] else None) for li in range(len(lengths))] for d in range(D)]
