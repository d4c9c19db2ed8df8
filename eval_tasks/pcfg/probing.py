"""Linear probes that read the metadata ``j_d`` from a frozen model's hidden states.

The model sees a masked prefix and the first L terminals; the hidden state at the last position of
every layer can feed a multinomial logistic-regression probe per level. Three rules keep the probe a
reading of the *model* rather than a lookup table of prompts:

- probe train and test are split by **prompt identity**: every distinct L-terminal prompt string
  lies wholly in one split (``prompt_split``), so a test prompt was never seen by the probe;
- the layer and the L2 strength are chosen by **grouped cross-validation inside the train split**
  (folds never share a prompt either); the last layer is reported beside the chosen one;
- every probe test item is also scored by the **Bayes classifier** (argmax of the exact posterior
  ``p(j_d | x_1..x_L)``), so each cell says how much a perfect reader could get, item by item.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np
import torch

from metacond.data_builders.pcfg.inference import FULL, prompt_positions

from .prompts import PCFGLayout, batched, pad_batch

DEFAULT_LENGTHS: tuple = (1, 2, 5, 10, 20, 50, 100, FULL)
# Fixed before any study run: the probe's L2 grid (standardized features), CV folds and test share.
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
CV_FOLDS = 3
TEST_FRACTION = 0.4
# A probe trained on a handful of distinct prompts (L = 1 has one per terminal) cannot generalize to unseen
# prompts whatever the model knows: such cells report numbers but enter no verdict.
MIN_TRAIN_PROMPTS = 50


def prompt_split(terminals: Sequence[Sequence[int]], lengths: Sequence, test_fraction: float = TEST_FRACTION, seed: int = 0) -> np.ndarray:
    """[len(lengths), N] int8: -1 where the sequence is shorter than L, 0 = probe train, 1 = probe test.

    Distinct prompts (the first L terminals) are ordered by a seeded hash and assigned to test until it
    holds ``test_fraction`` of the valid sequences; every copy of a prompt follows it.
    """
    out = np.full((len(lengths), len(terminals)), -1, np.int8)
    for li, L in enumerate(lengths):
        groups: dict[tuple, list[int]] = {}
        for i, t in enumerate(terminals):
            p = prompt_positions(len(t), [L])[0]
            if p is not None:
                groups.setdefault(tuple(int(x) for x in t[:p]), []).append(i)
        order = sorted(groups, key=lambda k: hashlib.sha256(f"{seed}/{L}/{k}".encode()).digest())
        target = test_fraction * sum(len(v) for v in groups.values())
        in_test = 0
        for k in order:
            side = 1 if in_test < target else 0
            in_test += len(groups[k]) * side
            out[li, groups[k]] = side
    return out


def prompt_groups(terminals: Sequence[Sequence[int]], L) -> np.ndarray:
    """[N] integer id of each sequence's L-terminal prompt (-1 if shorter)."""
    ids: dict[tuple, int] = {}
    out = np.full(len(terminals), -1, np.int64)
    for i, t in enumerate(terminals):
        p = prompt_positions(len(t), [L])[0]
        if p is not None:
            out[i] = ids.setdefault(tuple(int(x) for x in t[:p]), len(ids))
    return out


@torch.no_grad()
def hidden_features(model, layout: PCFGLayout, terminals: Sequence[Sequence[int]], lengths: Sequence = DEFAULT_LENGTHS,
                    batch_size: int = 64, metadata: Sequence[Sequence[int]] | None = None, depth: int = 0) -> tuple[np.ndarray, np.ndarray]:
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
            for li, L in enumerate(prompt_positions(len(terminals[i]), lengths)):
                if L is None:
                    continue
                feats[:, li, i] = hs[:, b, P - 1 + L]
                valid[li, i] = True
    return feats, valid


def _fit_all(x: np.ndarray, ys: np.ndarray, counts: np.ndarray, ks: Sequence[int], l2: float, iters: int = 100) -> list[np.ndarray]:
    """Fit one softmax probe per (layer, level) jointly: x [layers, m, H] distinct rows, ys [m, levels], ``counts`` [m] the
    items each row stands for. Returns weights per level [layers, H+1, k].

    The problems are independent (separate weight columns, summed losses), so one L-BFGS run on one
    weight tensor solves them all with a single batched matmul per evaluation.
    """
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    xt = torch.cat([xt, torch.ones(*xt.shape[:2], 1)], -1)
    levels = list(ks)
    bounds = np.concatenate([[0], np.cumsum(ks)])
    w = torch.zeros(x.shape[0], x.shape[2] + 1, int(bounds[-1]), requires_grad=True)
    targets = [torch.from_numpy(ys[:, d]).long().repeat(x.shape[0]) for d in range(len(ks))]
    weight = torch.from_numpy(np.asarray(counts, np.float32)).repeat(x.shape[0])
    opt = torch.optim.LBFGS([w], max_iter=iters, line_search_fn="strong_wolfe", tolerance_grad=1e-5, tolerance_change=1e-5)
    n = float(np.sum(counts))
    if len(set(ks)) == 1:  # every level has k classes: one cross-entropy call over [layers, rows, levels] (a fifth faster)
        targets = [torch.from_numpy(ys).long().repeat(x.shape[0], 1).reshape(-1)]
        weight, bounds, ks = weight.repeat_interleave(len(ks)), np.array([0, bounds[-1]]), [ks[0]]

    def closure():
        opt.zero_grad()
        logits = torch.bmm(xt, w)  # [layers, rows, sum k]
        loss = l2 * (w[:, :-1] ** 2).sum()
        for d in range(len(targets)):
            part = logits[..., bounds[d] : bounds[d + 1]].reshape(-1, ks[d])
            loss = loss + (torch.nn.functional.cross_entropy(part, targets[d], reduction="none") * weight).sum() / n
        loss.backward()
        return loss

    opt.step(closure)
    wd = w.detach().numpy()
    return [wd[..., sum(levels[:d]) : sum(levels[: d + 1])] for d in range(len(levels))]


def _predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[layers, n] predicted classes."""
    return np.argmax(np.einsum("lnh,lhk->lnk", x, w[:, :-1]) + w[:, None, -1], axis=-1)


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(1, keepdims=True), train.std(1, keepdims=True) + 1e-6
    return [(a - mu) / sd for a in (train, *others)]


def _collapse(x: np.ndarray, labels: np.ndarray, groups: np.ndarray, tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (prompt, labels) rows of standardized x [layers, n, H] with their counts: the same objective on fewer rows.

    Items that share a prompt and labels share their prefix and prompt, hence their hidden state (a causal
    model's state at position L sees tokens <= L only), so a short-prompt cell of thousands of items holds a
    few dozen distinct rows. Batch padding can move a state in its last bits: the group's mean stands for
    it. Features that differ within a group (not a model's states) keep every row.
    """
    key = np.concatenate([groups[:, None], labels], 1)
    uniq, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    if len(uniq) == len(key):
        return x, labels, np.ones(len(key), np.int64)
    sums = np.zeros((x.shape[0], len(uniq), x.shape[2]), np.float64)
    np.add.at(sums, (slice(None), inv), x)  # type: ignore[arg-type]  # numpy's stub takes integer indices only; a tuple with slices is documented
    mean = (sums / counts[None, :, None]).astype(np.float32)
    if np.abs(x - mean[:, inv]).max() > tol:
        return x, labels, np.ones(len(key), np.int64)
    return mean, uniq[:, 1:], counts


def _folds(groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    uniq = np.unique(groups)
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(uniq), np.arange(len(uniq)) % k))
    return np.array([fold_of[g] for g in groups])


def probe_cell(feats: np.ndarray, labels: np.ndarray, ks: Sequence[int], train: np.ndarray, test: np.ndarray, groups: np.ndarray,
               seed: int = 0, l2_grid: Sequence[float] = L2_GRID, folds: int = CV_FOLDS) -> list[dict[str, Any]]:
    """Probes for every level at one prompt length. feats [layers, N, H]; labels [N, levels]; masks over N.

    Returns per level: chosen layer and L2 (grouped CV on ``train``), test correctness per item (chosen
    and last layer), CV accuracy.
    """
    n_layers = feats.shape[0]
    tr_idx, te_idx = np.where(train)[0], np.where(test)[0]
    fold = _folds(groups[tr_idx], min(folds, len(np.unique(groups[tr_idx]))), seed)
    cv = np.zeros((len(l2_grid), len(ks), n_layers))
    for f in range(fold.max() + 1):
        a, b = tr_idx[fold != f], tr_idx[fold == f]
        xa, xb = _standardize(feats[:, a], feats[:, b])
        rows = _collapse(xa, labels[a], groups[a])
        for gi, l2 in enumerate(l2_grid):
            ws = _fit_all(*rows, ks=ks, l2=l2)
            for d, w in enumerate(ws):
                cv[gi, d] += (_predict(w, xb) == labels[b, d][None]).sum(1)
    cv /= len(tr_idx)
    xa, xt = _standardize(feats[:, tr_idx], feats[:, te_idx])
    rows = _collapse(xa, labels[tr_idx], groups[tr_idx])
    chosen = [np.unravel_index(np.argmax(cv[:, d]), cv[:, d].shape) for d in range(len(ks))]
    last = [int(np.argmax(cv[:, d, -1])) for d in range(len(ks))]
    # Refit on the whole train split only at the L2 values some level chose: each fit is joint over levels, so the
    # weights are the same as refitting the whole grid, at a fraction of the cost.
    needed = sorted({int(g) for g, _ in chosen} | set(last))
    fitted = {gi: _fit_all(*rows, ks=ks, l2=l2_grid[gi]) for gi in needed}
    out = []
    for d in range(len(ks)):
        g_best, layer = chosen[d]
        g_last = last[d]
        pred = _predict(fitted[int(g_best)][d], xt)
        pred_last = _predict(fitted[g_last][d], xt)
        out.append({"layer": int(layer), "l2": float(l2_grid[int(g_best)]), "cv_accuracy": float(cv[g_best, d, layer]),
                    "correct": (pred[layer] == labels[te_idx, d]).astype(np.int8),
                    "correct_last_layer": (pred_last[-1] == labels[te_idx, d]).astype(np.int8), "test_index": te_idx})
    return out


def probe_accuracy(feats: np.ndarray, valid: np.ndarray, metadata: np.ndarray, num_variants: Sequence[int], split: np.ndarray,
                   groups: Sequence[np.ndarray], lengths: Sequence = DEFAULT_LENGTHS, min_examples: int = 30, seed: int = 0) -> dict[str, Any]:
    """Probe results by level and L. ``split``/``groups`` come from ``prompt_split``/``prompt_groups``.

    Each cell holds the summary and, under ``items``, per-test-item correctness for paired comparisons.
    """
    out: dict[str, Any] = {"lengths": [str(L) for L in lengths], "levels": [[None] * len(lengths) for _ in num_variants]}
    for li, L in enumerate(lengths):
        tr, te = valid[li] & (split[li] == 0), valid[li] & (split[li] == 1)
        if min(tr.sum(), te.sum()) < min_examples or len(np.unique(groups[li][tr])) < 2:
            continue
        cells = probe_cell(feats[:, li], metadata, num_variants, tr, te, groups[li], seed=seed)
        for d, c in enumerate(cells):
            acc = float(c["correct"].mean())
            out["levels"][d][li] = {"L": str(L), "test_accuracy": acc, "last_layer_accuracy": float(c["correct_last_layer"].mean()),
                                    "test_se": float(np.sqrt(acc * (1 - acc) / len(c["correct"]))), "layer": c["layer"], "l2": c["l2"],
                                    "cv_accuracy": c["cv_accuracy"], "n_test": int(len(c["correct"])),
                                    "n_train_prompts": int(len(np.unique(groups[li][tr]))), "n_test_prompts": int(len(np.unique(groups[li][te]))),
                                    "items": {"index": c["test_index"].tolist(), "correct": c["correct"].tolist(),
                                              "correct_last_layer": c["correct_last_layer"].tolist()}}
    return out
