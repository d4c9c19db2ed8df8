"""Regime baselines for the localization study: count models on the same test articles and bytes as the models.

Two questions every perplexity verdict depends on (the PCFG study answers them with its Bayes model):

- *Is the model a language model at all?* A smoothed token unigram and bigram over the build's own
  tokenizer, trained on the study's training split, score the very bytes the models score (the
  perplexity task's article bodies, cut to the same byte budget). A model that does not beat them has
  learned less than counting.
- *What can the metadata buy?* The same models with the statistics of the article's own metadata value
  (its country, its continent) mixed in: the value's counts with absolute discounting, backing off to
  the global model (the standard domain-adapted n-gram; no tuned weight). The bits/byte they gain on
  the test articles is what knowing the metadata is worth to a counting model, printed beside every
  metadata claim.

Smoothing (fixed before any run): Lidstone (+1) unigram; interpolated absolute discounting for the
bigram (discount n1 / (n1 + 2 n2), Ney et al. 1994) backing off to that unigram; the same discount for
the metadata-value counts backing off to the global model of the same order. The first token of an
article is conditioned on ``<bos>``, as the models see it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metacond import MetacondError

MODELS = ("unigram", "bigram")
FIELDS = ("country", "continent")


@dataclass
class NgramArguments:
    train_file: str | None = field(default=None, metadata={"help": "A news build's train parquet (article fields; token ids are not used)."})
    test_file: str | None = field(default=None, metadata={"help": "The test parquet the models are scored on."})
    tokenizer: str | None = field(default=None, metadata={"help": "The build's tokenizer directory."})
    max_body_bytes: int = field(default=448, metadata={"help": "Article bytes scored, as in the perplexity tasks."})

    def __post_init__(self) -> None:
        missing = [k for k in ("train_file", "test_file", "tokenizer") if not getattr(self, k)]
        if missing:
            raise MetacondError(f"the n-gram baselines need {', '.join(missing)}")


class _Counts:
    """Unigram and bigram counts of token sequences (each preceded by <bos>), with absolute-discounting statistics."""

    def __init__(self, seqs: list[np.ndarray], bos: int, V: int):
        self.V = V
        seqs = [x for x in seqs if len(x)]
        toks = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
        self.uni = np.bincount(toks, minlength=V).astype(np.float64)
        self.N = float(self.uni.sum())
        prev = np.concatenate([np.concatenate([[bos], s[:-1]]) for s in seqs]) if seqs else np.zeros(0, np.int64)
        keys, counts = np.unique(prev.astype(np.int64) * V + toks, return_counts=True)
        self.keys, self.counts = keys, counts.astype(np.float64)
        self.ctx = np.bincount(keys // V, weights=self.counts, minlength=V)  # c(v)
        self.types = np.bincount(keys // V, minlength=V).astype(np.float64)  # distinct successors of v
        self.uni_types = float((self.uni > 0).sum())
        n1, n2 = float((counts == 1).sum()), float((counts == 2).sum())
        self.D = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5

    def pair_counts(self, prev: np.ndarray, tok: np.ndarray) -> np.ndarray:
        k = prev.astype(np.int64) * self.V + tok
        i = np.searchsorted(self.keys, k)
        i = np.minimum(i, len(self.keys) - 1)
        return np.where((len(self.keys) > 0) & (self.keys[i] == k), self.counts[i], 0.0)

    def backoff(self, base: np.ndarray, prev: np.ndarray, tok: np.ndarray) -> np.ndarray:
        """Interpolated absolute discounting of these bigram counts over ``base`` (the lower model's probabilities)."""
        c = self.ctx[prev]
        seen = c > 0
        cc = np.where(seen, c, 1.0)
        p = np.maximum(self.pair_counts(prev, tok) - self.D, 0.0) / cc + self.D * self.types[prev] / cc * base
        return np.where(seen, p, base)

    def backoff_unigram(self, base: np.ndarray, tok: np.ndarray) -> np.ndarray:
        if self.N == 0:
            return base
        return np.maximum(self.uni[tok] - self.D, 0.0) / self.N + self.D * self.uni_types / self.N * base


def _articles(path: str, max_body_bytes: int) -> list[dict[str, Any]]:
    from metacond.eval_tasks.localnews.utils import load_articles

    return load_articles(data_file=path, condition="none", max_body_bytes=max_body_bytes)["test"].to_list()


def _train_rows(path: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    from metacond.eval_tasks.localnews.utils import continent_of_row, split_article

    have = set(pq.read_schema(path).names)
    cols = [c for c in ("source_url", "url", "short_url", "country", "title", "text") if c in have]
    rows = pq.read_table(path, columns=cols).to_pylist()
    return [{"text": split_article(r, "none")[2], "country": r["country"], "continent": continent_of_row(r)} for r in rows]


def ngram_baselines(args: NgramArguments) -> dict[str, Any]:
    """Per-article bits of every baseline on the test articles, and what each metadata field buys in bits/byte."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    V, bos = len(tok), tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    enc = lambda texts: [np.asarray(x, np.int64) for x in tok(texts, add_special_tokens=False)["input_ids"]]  # noqa: E731
    assert args.train_file is not None and args.test_file is not None  # __post_init__ requires them
    train = _train_rows(args.train_file)
    seqs = enc([r["text"] for r in train])
    glob = _Counts(seqs, bos, V)
    by_value: dict[str, dict[str, _Counts]] = {f: {} for f in FIELDS}
    for f in FIELDS:
        groups: dict[str, list[np.ndarray]] = {}
        for r, s in zip(train, seqs):
            groups.setdefault(str(r[f]), []).append(s)
        by_value[f] = {k: _Counts(v, bos, V) for k, v in groups.items()}
    test = _articles(args.test_file, args.max_body_bytes)
    items = []
    for doc, s in zip(test, enc([d["body"] for d in test])):
        prev = np.concatenate([[bos], s[:-1]]).astype(np.int64)
        p_uni = (glob.uni[s] + 1.0) / (glob.N + V)
        p_bi = glob.backoff(p_uni, prev, s)
        nats = {"unigram": -np.log(p_uni).sum(), "bigram": -np.log(p_bi).sum()}
        for f in FIELDS:
            c = by_value[f].get(str(doc[f] if f in doc else ""))
            if c is None:  # a value no training article has: the global model
                nats[f"unigram+{f}"], nats[f"bigram+{f}"] = nats["unigram"], nats["bigram"]
                continue
            pu = c.backoff_unigram(p_uni, s)
            nats[f"unigram+{f}"] = -np.log(pu).sum()
            nats[f"bigram+{f}"] = -np.log(c.backoff(p_bi, prev, s)).sum()
        items.append({"id": str(doc["article"]), "continent": doc["continent"], "country": doc["country"], "bytes": float(doc["body_bytes"]), "tokens": len(s),
                      "bits": {k: float(v) / math.log(2) for k, v in nats.items()}})
    return {"train_articles": len(train), "train_tokens": int(glob.N), "test_articles": len(items), "vocab_size": V, "discount": glob.D,
            "max_body_bytes": args.max_body_bytes, "bits_per_byte": summarize(items), "items": items}


def summarize(items: list[dict[str, Any]]) -> dict[str, float]:
    """Bits/byte of every baseline: continents weighted equally (as the claims weigh them), each the ratio of sums."""
    conts = sorted({i["continent"] for i in items})
    out = {}
    for k in items[0]["bits"] if items else []:
        per = [sum(i["bits"][k] for i in items if i["continent"] == c) / sum(i["bytes"] for i in items if i["continent"] == c) for c in conts]
        out[k] = float(np.mean(per))
    return out
