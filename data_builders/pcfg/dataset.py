"""Build the synthetic study's datasets: metadata prefix, terminals, loss mask.

Sequence layout: ``<bos> m_0 … m_{D-1} x_1 … x_n <eos>``. With probability ``metadata_fraction``
a sequence shows its true ``j_d`` for ``d < D_M`` and ``<mask>`` for the rest; otherwise every slot
is ``<mask>``. ``labels`` are -100 on ``<bos>`` and the metadata slots, so only terminals and
``<eos>`` are scored.

Outputs are cached under a key that hashes the full config, the grammar content and the builder
version (``datasets``' own builder cache ignores code and config changes).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metacond.modeling.summary import BuildManifest

from .grammar import Grammar, GrammarError, resolve_grammar
from .sampler import SampleBatch, sample

BUILDER_VERSION = "3"
SPLITS = ("train", "validation", "test")


@dataclass
class PCFGDataConfig:
    grammar: str = field(default="small", metadata={"help": "Grammar preset (small, paper, tiny) or a grammar JSON/text file."})
    grammar_seed: int | None = field(default=None, metadata={"help": "Override the preset's generator seed (a different grammar)."})
    metadata_depth: int = field(default=0, metadata={"help": "D_M: how many leading metadata levels j_0..j_{D_M-1} are shown (0..D)."})
    metadata_fraction: float = field(default=0.5, metadata={"help": "Fraction of sequences that show their metadata; the rest show only <mask>."})
    train_size: int = field(default=20_000, metadata={"help": "Training sequences."})
    validation_size: int = field(default=1_000, metadata={"help": "Validation sequences."})
    test_size: int = field(default=1_000, metadata={"help": "Test sequences."})
    seed: int = field(default=0, metadata={"help": "Data seed: same config and seed give identical data, whatever num_proc."})
    with_labels: bool = field(default=False, metadata={"help": "Add a per-terminal column of level ancestors (nonterminal ids)."})
    num_proc: int = field(default=1, metadata={"help": "Processes for sampling (does not change the data)."})
    output_dir: str | None = field(default=None, metadata={"help": "Where to write the dataset; default: $METACOND_CACHE/pcfg/<config hash>."})
    overwrite: bool = field(default=False, metadata={"help": "Rebuild even if the output holds this exact build, or replace a different one."})
    bayes_sample: int = field(default=200, metadata={"help": "Test sequences scored by the exact inside algorithm for the summary (0 = skip)."})

    def __post_init__(self) -> None:
        for name in ("train_size", "validation_size", "test_size", "bayes_sample"):
            if getattr(self, name) < 0:
                raise GrammarError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.num_proc < 1:
            raise GrammarError(f"num_proc must be >= 1, got {self.num_proc}")
        if not 0.0 <= self.metadata_fraction <= 1.0:
            raise GrammarError(f"metadata_fraction must be in [0, 1], got {self.metadata_fraction}")
        if self.metadata_depth < 0:
            raise GrammarError(f"metadata_depth must be >= 0, got {self.metadata_depth}")


def cache_root() -> Path:
    return Path(os.environ.get("METACOND_CACHE", Path.home() / ".cache" / "metacond"))


def build_key(cfg: PCFGDataConfig, grammar: Grammar) -> str:
    d = asdict(cfg)
    for k in ("num_proc", "output_dir", "overwrite", "bayes_sample"):
        d.pop(k)
    d["grammar"] = grammar.fingerprint()
    # The fingerprint ignores rule order (the same grammar from JSON or text), but the sampler draws rules
    # in file order, so the data does depend on it.
    d["rule_order"] = hashlib.sha256("|".join(f"{r.lhs}/{r.variant}/{' '.join(r.rhs)}" for r in grammar.rules).encode()).hexdigest()[:16]
    d["builder_version"] = BUILDER_VERSION
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _split_seed(seed: int, split: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{split}".encode()).digest()[:4], "little")


def encode_split(batch: SampleBatch, grammar: Grammar, metadata_depth: int, metadata_fraction: float, seed: int) -> dict[str, list]:
    """Columns for one split, built with array ops over the whole batch."""
    from metacond.modeling.tokenizer import metadata_token, pcfg_vocab

    vocab = pcfg_vocab(grammar)
    D = grammar.depth
    n = len(batch)
    rng = np.random.default_rng([seed, 7])
    has_meta = (rng.random(n) < metadata_fraction) & (metadata_depth > 0)
    mask_id, bos, eos = vocab["<mask>"], vocab["<bos>"], vocab["<eos>"]
    level_base = np.array([vocab[metadata_token(d, 0)] for d in range(D)], np.int64)
    prefix = np.full((n, D), mask_id, np.int64)
    if metadata_depth:
        shown = batch.metadata[:, :metadata_depth] + level_base[None, :metadata_depth]
        prefix[:, :metadata_depth] = np.where(has_meta[:, None], shown, mask_id)
    term_base = vocab[grammar.terminals[0]]
    lens = batch.lengths()
    L = lens + D + 2
    out_off = np.concatenate([[0], np.cumsum(L)])
    ids = np.empty(out_off[-1], np.int32)
    labels = np.empty(out_off[-1], np.int32)
    starts = out_off[:-1]
    ids[starts] = bos
    for d in range(D):
        ids[starts + 1 + d] = prefix[:, d]
    # Terminal positions: each sequence's terminals shifted by its prefix.
    tpos = np.arange(batch.tokens.shape[0]) + np.repeat(starts + 1 + D - batch.offsets[:-1], lens)
    ids[tpos] = batch.tokens + term_base
    ids[out_off[1:] - 1] = eos
    labels[:] = ids
    labels[starts] = -100
    for d in range(D):
        labels[starts + 1 + d] = -100
    split = lambda a: np.split(a, out_off[1:-1])  # noqa: E731
    cols = {
        "terminals": [x.tolist() for x in np.split(batch.tokens, batch.offsets[1:-1])] if n else [],
        "metadata": batch.metadata.tolist(),
        "has_metadata": has_meta.tolist(),
        "input_ids": [x.tolist() for x in split(ids)] if n else [],
        "labels": [x.tolist() for x in split(labels)] if n else [],
        "attention_mask": [[1] * int(k) for k in L],
        # One span per metadata slot: training-time schedules replace a dropped slot by <mask>.
        "meta_spans": [[[1 + d, 2 + d] for d in range(D)]] * n,
    }
    if batch.labels is not None:
        cols["nonterminals"] = [x.tolist() for x in np.split(batch.labels, batch.offsets[1:-1])] if n else []
    return cols


def features(grammar: Grammar, with_labels: bool):
    from datasets import Features, Sequence, Value

    f = {
        "terminals": Sequence(Value("int32")),
        "metadata": Sequence(Value("int32")),
        "has_metadata": Value("bool"),
        "input_ids": Sequence(Value("int32")),
        "labels": Sequence(Value("int32")),
        "attention_mask": Sequence(Value("int8")),
        "meta_spans": Sequence(Sequence(Value("int32"))),
    }
    if with_labels:
        f["nonterminals"] = Sequence(Sequence(Value("int32")))
    return Features(f)


def pcfg_dataset_dir(cfg: PCFGDataConfig, grammar=None) -> Path:
    """Where ``build_pcfg_dataset(cfg)`` writes (and finds) the build: ``output_dir``, or the cache folder of its key."""
    grammar = grammar or resolve_grammar(cfg.grammar, cfg.grammar_seed)
    return Path(cfg.output_dir) if cfg.output_dir else cache_root() / "pcfg" / build_key(cfg, grammar)


def build_pcfg_dataset(cfg: PCFGDataConfig, progress: bool = True) -> tuple[Any, Path, dict[str, Any]]:
    """Build (or load from cache) the DatasetDict for ``cfg``. Returns (dataset, directory, stats)."""
    from datasets import Dataset, DatasetDict, concatenate_datasets, load_from_disk
    from tqdm.auto import tqdm

    from metacond.modeling.tokenizer import build_pcfg_tokenizer

    grammar = resolve_grammar(cfg.grammar, cfg.grammar_seed)
    if cfg.metadata_depth > grammar.depth:
        raise GrammarError(f"metadata_depth {cfg.metadata_depth} exceeds the grammar depth D={grammar.depth}")
    key = build_key(cfg, grammar)
    out = pcfg_dataset_dir(cfg, grammar)
    if BuildManifest.exists(out) and not cfg.overwrite:
        found = BuildManifest.load(out)
        if found.key == key:
            return load_from_disk(str(out / "hf")), out, found.extra["stats"] | {"cached": True}
        raise GrammarError(f"{out} holds a dataset built from another config (key {found.key}); pass --overwrite or another --output_dir")
    if out.exists() and any(out.iterdir()) and not BuildManifest.exists(out) and not cfg.overwrite:
        raise GrammarError(f"{out} exists and is not a metacond PCFG dataset; choose an empty --output_dir or pass --overwrite")

    t0 = time.time()
    sizes = {"train": cfg.train_size, "validation": cfg.validation_size, "test": cfg.test_size}
    feats = features(grammar, cfg.with_labels)
    parts: dict[str, Any] = {}
    stats: dict[str, Any] = {"splits": {}}
    chunk = 50_000
    bar = tqdm(total=sum(sizes.values()), desc="sampling + encoding", unit="seq", disable=not progress)
    for split, size in sizes.items():
        sseed = _split_seed(cfg.seed, split)
        pieces = []
        lens_all = []
        for c0 in range(0, max(size, 1), chunk):
            m = min(chunk, size - c0)
            if m <= 0:
                break
            b = sample(grammar, m, seed=sseed + c0 // chunk, with_labels=cfg.with_labels, num_proc=cfg.num_proc)
            cols = encode_split(b, grammar, cfg.metadata_depth, cfg.metadata_fraction, sseed + c0 // chunk)
            pieces.append(Dataset.from_dict(cols, features=feats))
            lens_all.append(b.lengths())
            bar.update(m)
        ds = concatenate_datasets(pieces) if pieces else Dataset.from_dict({k: [] for k in feats}, features=feats)
        parts[split] = ds
        lens = np.concatenate(lens_all) if lens_all else np.zeros(0, int)
        stats["splits"][split] = {
            "sequences": int(size),
            "terminals": int(lens.sum()),
            "length_min": int(lens.min()) if size else 0,
            "length_mean": round(float(lens.mean()), 2) if size else 0.0,
            "length_max": int(lens.max()) if size else 0,
            "with_metadata": int(np.sum(ds["has_metadata"])) if size else 0,
        }
    bar.close()
    dd = DatasetDict(parts)
    if cfg.bayes_sample and cfg.test_size:
        stats["bayes"] = bayes_summary(grammar, dd["test"], cfg.metadata_depth, cfg.bayes_sample)
    stats["wall_seconds"] = round(time.time() - t0, 2)

    out.mkdir(parents=True, exist_ok=True)
    dd.save_to_disk(str(out / "hf"))
    (out / "parquet").mkdir(exist_ok=True)
    for split, ds in dd.items():
        ds.to_parquet(str(out / "parquet" / f"{split}.parquet"))
    grammar.save(out / "grammar.json")
    write_lmeval_file(dd["test"], grammar, cfg.metadata_depth, out / "lmeval" / "test.jsonl")
    build_pcfg_tokenizer(grammar).save_pretrained(str(out / "tokenizer"))
    (out / "README.md").write_text(dataset_card(cfg, grammar, stats))
    BuildManifest(key=key, metadata_mode="mask", config=asdict(cfg),
                  extra={"grammar": grammar.summary(), "grammar_fingerprint": grammar.fingerprint(), "depth": grammar.depth,
                         "builder_version": BUILDER_VERSION, "stats": stats}).save(out)
    return dd, out, stats | {"cached": False}


def write_lmeval_file(test, grammar: Grammar, metadata_depth: int, path: Path) -> None:
    """Test sequences for the ``pcfg_loss`` lm-eval tasks: terminals as text and the metadata prefix at D_M."""
    from metacond.modeling.tokenizer import metadata_token

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for t, j in zip(test["terminals"], test["metadata"]):
            shown = [metadata_token(d, j[d]) if d < metadata_depth else "<mask>" for d in range(grammar.depth)]
            f.write(json.dumps({"terminals": " ".join(grammar.terminals[i] for i in t), "metadata": list(j), "metadata_depth": metadata_depth,
                                "metadata_prefix": " ".join(shown), "num_scored_tokens": len(t) + 1}) + "\n")


def bayes_summary(grammar: Grammar, test, metadata_depth: int, n: int) -> dict[str, float]:
    """Bayes-optimal loss (nats per scored token: terminals + <eos>) on the first n test sequences."""
    from .inference import PCFGInference

    inf = PCFGInference(grammar)
    rows = test.select(range(min(n, len(test))))
    seqs = [np.asarray(t) for t in rows["terminals"]]
    ntok = sum(len(s) + 1 for s in seqs)
    lp_none = inf.log_prob(seqs)
    res = {"sequences": len(seqs), "loss_no_metadata": round(float(-lp_none.sum() / ntok), 5)}
    if metadata_depth:
        metas = [tuple(m[:metadata_depth]) for m in rows["metadata"]]
        lp_meta = inf.log_prob(seqs, metas)
        res["loss_with_metadata"] = round(float(-lp_meta.sum() / ntok), 5)
    res["accepted_fraction"] = float(np.mean(np.isfinite(lp_none)))
    return res


def dataset_card(cfg: PCFGDataConfig, grammar: Grammar, stats: dict[str, Any]) -> str:
    import yaml

    header = {
        "tags": ["synthetic", "pcfg", "metadata-conditioning", "metacond"],
        "license": "apache-2.0",
        "configs": [{"config_name": "default", "data_files": [{"split": s, "path": f"parquet/{s}.parquet"} for s in SPLITS]}],
    }
    rows = "\n".join(
        f"| {s} | {v['sequences']} | {v['with_metadata']} | {v['length_min']} / {v['length_mean']} / {v['length_max']} |"
        for s, v in stats["splits"].items()
    )
    bayes = stats.get("bayes")
    btxt = ""
    if bayes:
        btxt = f"\nBayes-optimal loss on {bayes['sequences']} test sequences: {bayes['loss_no_metadata']} nats/token without metadata"
        if "loss_with_metadata" in bayes:
            btxt += f", {bayes['loss_with_metadata']} with the first {cfg.metadata_depth} metadata levels"
        btxt += ".\n"
    return f"""---
{yaml.safe_dump(header, sort_keys=False)}---

# PCFG metadata-conditioning data ({grammar.name}, D_M = {cfg.metadata_depth})

Synthetic sequences from {grammar.summary()}.
Each sequence is `<bos> m_0 … m_{{D-1}} x_1 … x_n <eos>`; a fraction {cfg.metadata_fraction} of sequences show the
first {cfg.metadata_depth} metadata indices (the rule-set variant chosen at each level), the rest show `<mask>`.
`labels` are -100 on `<bos>` and the metadata slots.

| split | sequences | with metadata | length min / mean / max |
|---|---|---|---|
{rows}
{btxt}
Columns: `terminals` (terminal ids in `grammar.json` order), `metadata` (the true j, all D levels),
`has_metadata`, `input_ids`, `labels`, `attention_mask`, `meta_spans` (token span of each metadata slot).

Built with:

```
metacond pcfg build --grammar {cfg.grammar} --metadata_depth {cfg.metadata_depth} --metadata_fraction {cfg.metadata_fraction} \\
  --train_size {cfg.train_size} --validation_size {cfg.validation_size} --test_size {cfg.test_size} --seed {cfg.seed}
```
"""
