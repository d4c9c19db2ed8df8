"""Build models for a tokenizer, and write final checkpoint directories atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from metacond import MetacondError

from .sizes import llama_config
from .summary import TrainingSummary


def build_model(size: str, tokenizer, seed: int = 0, **overrides: Any):
    """A freshly initialized ``LlamaForCausalLM`` whose vocabulary is the tokenizer's."""
    import torch
    from transformers import LlamaForCausalLM

    cfg = llama_config(size, len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, **overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    check_vocab(model, tokenizer)
    return model


def check_vocab(model, tokenizer) -> None:
    n_model = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > n_model:
        raise MetacondError(f"tokenizer has {len(tokenizer)} tokens but the model's embedding has {n_model} rows")


def is_finished(directory: str | Path) -> bool:
    return (Path(directory) / TrainingSummary.FILE).is_file()


def staging_dir(directory: str | Path) -> Path:
    """Where a run stages its final files before ``finalize`` moves them in."""
    return Path(directory) / ".final-tmp"


def finalize(directory: str | Path, tokenizer, summary: TrainingSummary, max_new_tokens: int = 512) -> Path:
    """Complete a final directory from its staging folder (which already holds the model weights).

    Adds the tokenizer and generation config, moves everything in, and writes ``training_summary.json``
    last, so a directory without it never looks like a finished model.
    """
    from transformers import GenerationConfig

    out = Path(directory)
    tmp = staging_dir(out)
    tokenizer.save_pretrained(tmp)
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                     do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens).save_pretrained(tmp)
    for f in tmp.iterdir():
        os.replace(f, out / f.name)
    tmp.rmdir()
    summary.save(out)
    return out
