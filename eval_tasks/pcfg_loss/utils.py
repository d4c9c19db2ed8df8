"""Helpers of the pcfg_loss tasks. Rows come from a metacond PCFG build's ``lmeval/test.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path


def load_sequences(data_file=None, **kwargs):
    import datasets

    if not data_file:
        raise ValueError("pcfg_loss needs its data file: --metadata '{\"data_file\": \"DATASET_DIR/lmeval/test.jsonl\"}'")
    path = Path(data_file)
    if not path.is_file():
        raise FileNotFoundError(f"pcfg_loss data file {data_file!r} does not exist")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {"test": datasets.Dataset.from_list(rows)}


def masked_context(doc) -> str:
    return " ".join(["<mask>"] * len(doc["metadata"]))


def metadata_context(doc) -> str:
    return doc["metadata_prefix"]


def target(doc) -> str:
    return doc["terminals"] + " <eos>"


def process_results(doc, results):
    ll, _ = results[0]
    n = doc["num_scored_tokens"]
    return {"nll_per_token": (-ll, n), "token_perplexity": (ll, n)}


def weighted_nll(items) -> float:
    total = sum(a for a, _ in items)
    count = sum(b for _, b in items)
    return total / count
