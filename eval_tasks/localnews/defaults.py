"""The evaluation settings the localnews tasks and ``metacond eval`` share, decided once from the model.

lm-eval hands a task its model arguments (``pretrained=…``) merged into the task metadata, so a task loaded from
``lm_eval``'s CLI can read the same facts ``metacond eval`` reads: the model's context length (capped at the block
its training packed), the URL style of its training build, its tokenizer. Both paths call ``resolve`` and so score
the same bytes with the same defaults; an explicit value (``--metadata '{"max_body_bytes": 768}'`` or
``metacond eval --max_body_bytes``) wins in both.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from metacond.errors import MetacondError

DEFAULT_URL_STYLE = "host"
FALLBACK_CONTEXT = 2048  # a model whose config cannot be read (lm-eval's own default max_length)


def context_length(model_dir: str | Path, config) -> int:
    """The longest context evaluation may use: the model's positions, capped at the block length it was trained on
    (a packed run's summary records it), so no scored token sits at a position training never covered."""
    from metacond.modeling.summary import TrainingSummary

    n = int(getattr(config, "max_position_embeddings", FALLBACK_CONTEXT) or FALLBACK_CONTEXT)
    path = Path(model_dir)
    if (path / TrainingSummary.FILE).is_file():
        data = TrainingSummary.load(path).recipe.get("data") or {}
        block = data.get("block_size") or data.get("max_length")
        if block:
            n = min(n, int(block))
    return n


def body_budget(max_body_bytes: int | None, max_len: int) -> int:
    """Article bytes scored by the perplexity tasks. Bytes bound tokens for byte-level tokenizers, so a body within the
    budget fits the context with room left for the metadata block; an explicit budget must leave that room too."""
    room = max_len - max(64, max_len // 8)
    if max_body_bytes is None:
        return max(256, max_len - 256) if max_len > 512 else room
    if max_body_bytes > room:
        raise MetacondError(f"max_body_bytes {max_body_bytes} leaves no room for the metadata in a {max_len}-token context (at most {room})")
    return int(max_body_bytes)


@functools.lru_cache(maxsize=8)
def _config(model: str):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model)


@functools.lru_cache(maxsize=8)
def tokenizer(model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def model_of(meta: dict[str, Any]) -> str | None:
    """The model a task is run for: lm-eval's ``pretrained`` model argument (a path or Hub id), when it is a name."""
    m = meta.get("pretrained")
    return m if isinstance(m, str) and m else None


def model_adds_bos(meta: dict[str, Any]) -> bool:
    """Whether the model's tokenizer puts a BOS before a plain string (lm-eval's default when add_bos_token is not given)."""
    model = model_of(meta)
    if model is None:
        return False
    tok = tokenizer(model)
    return tok.bos_token_id is not None and tok("x")["input_ids"][:1] == [tok.bos_token_id]


def url_style(meta: dict[str, Any]) -> str:
    """The metadata's URL style: the explicit one, which must agree with the model's training build, else the build's."""
    from metacond.modeling.summary import trained_setting

    model = model_of(meta)
    given = meta.get("url_style")
    if model is None:
        return given or DEFAULT_URL_STYLE
    return trained_setting(model, "url_style", given, "url_style", DEFAULT_URL_STYLE)


def max_body_bytes(meta: dict[str, Any]) -> int:
    """The body budget: the explicit one (checked against the model's context when known), else the model's default."""
    model = model_of(meta)
    given = meta.get("max_body_bytes")
    if model is None:
        if given is None:
            raise MetacondError("localnews_ppl needs the model (pretrained=… in --model_args) or max_body_bytes in --metadata")
        return int(given)
    return body_budget(None if given is None else int(given), context_length(model, _config(model)))


TRAINED = "trained"  # the condition that means "the template the model pretrained on", read from its training build


def trained_template(meta: dict[str, Any]):
    """The metadata template of the model's training build, with the build's line format, separator and body format:
    the bytes the model saw before each article, whatever fields the build declared (``country,dateline?``…)."""
    from metacond.data_builders.news.templates import Template
    from metacond.modeling.summary import TrainingSummary

    model = model_of(meta)
    if model is None or not (Path(model) / TrainingSummary.FILE).is_file():
        raise MetacondError("condition 'trained' needs the model (pretrained=… in --model_args) with its training summary")
    summary = TrainingSummary.load(model)
    name = summary.build_setting("template")
    if name is None:
        raise MetacondError(f"{model} was not pretrained on a news build: condition 'trained' has no template to read")
    cfg = (summary.metadata_scheme.get("builder") or {}).get("config") or {}
    formats = {k: cfg[k] for k in ("line_format", "separator", "body_format") if cfg.get(k) is not None}
    spec = next((t for t in cfg.get("templates") or [] if Template(t).name == name), name)  # the spec keeps its '?' marks
    return Template(name=spec, **formats)
