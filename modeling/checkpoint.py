"""Build models for a tokenizer, and write final checkpoint directories atomically."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from metacond import MetacondError

from .sizes import llama_config

SUMMARY_FILE = "training_summary.json"


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
    return (Path(directory) / SUMMARY_FILE).is_file()


def save_final(directory: str | Path, model, tokenizer, summary: dict[str, Any], extra_files: dict[str, Path] | None = None) -> Path:
    """Write model (safetensors), tokenizer, generation config and summary into ``directory``.

    Files are written to a hidden temporary folder first and moved in; ``training_summary.json``
    goes last, so a directory without it never looks like a finished model.
    """
    from transformers import GenerationConfig

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".final-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    use_cache = model.config.use_cache
    model.config.use_cache = True  # training turns the KV cache off; generation wants it
    model.save_pretrained(tmp, safe_serialization=True)
    model.config.use_cache = use_cache
    tokenizer.save_pretrained(tmp)
    gen = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                           do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=min(512, getattr(model.config, "max_position_embeddings", 512)))
    gen.save_pretrained(tmp)
    for name, src in (extra_files or {}).items():
        shutil.copy(src, tmp / name)
    for f in tmp.iterdir():
        os.replace(f, out / f.name)
    tmp.rmdir()
    (out / (SUMMARY_FILE + ".tmp")).write_text(json.dumps(summary, indent=1, default=str))
    os.replace(out / (SUMMARY_FILE + ".tmp"), out / SUMMARY_FILE)
    return out
