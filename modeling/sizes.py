"""Named model sizes: plain ``LlamaConfig`` (RoPE, SwiGLU, RMSNorm, SDPA attention).

| size | layers | hidden | heads | MLP | parameters (vocab 32,000 / 50,304, untied) |
|---|---|---|---|---|---|
| ``tiny`` | 2 | 64 | 4 | 256 | 0.13M + 2·64·V (CPU tests) |
| ``mini`` | 4 | 128 | 4 | 512 | 1.05M + 2·128·V (the PCFG study CPU preset) |
| ``small`` | 6 | 256 | 4 | 1024 | 6.3M + 2·256·V (the localization study's GPU preset) |
| ``pcfg-paper`` | 12 | 768 | 12 | 3072 | 113.3M + 2·768·V (≈113.3M with a PCFG vocabulary of ~30) |
| ``0.5b`` | 24 | 1024 | 16 | 2816 | 373.9M / 411.4M |
| ``1b`` | 16 | 2048 | 32 | 5632 | 953.2M / 1,028.2M |

The localization paper's "0.5B" was a ~410M config; ``0.5b`` matches that (24 × 1024, as Pythia-410M)
with a SwiGLU MLP of 2816 (≈ 8/3 · 1024, rounded to 256) so the non-embedding count stays ~308M.
``1b`` follows the 16 × 2048 shape of Pythia-1B. ``count_parameters`` computes these numbers.
"""

from __future__ import annotations

from typing import Any

from metacond import MetacondError

SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, intermediate_size=256, max_position_embeddings=1024),
    "mini": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4, intermediate_size=512, max_position_embeddings=1024),
    "small": dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=4, intermediate_size=1024, max_position_embeddings=1024),
    "pcfg-paper": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=12, intermediate_size=3072, max_position_embeddings=1024),
    "0.5b": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=16, intermediate_size=2816, max_position_embeddings=2048),
    "1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=32, intermediate_size=5632, max_position_embeddings=2048),
}


def llama_config(size: str, vocab_size: int, *, bos_token_id: int | None = None, eos_token_id: int | None = None,
                 pad_token_id: int | None = None, rope_theta: float = 10_000.0, tie_word_embeddings: bool = False,
                 max_position_embeddings: int | None = None, attn_implementation: str = "sdpa", **overrides: Any):
    from transformers import LlamaConfig

    if size not in SIZES:
        raise MetacondError(f"unknown model size {size!r}; choose from {', '.join(SIZES)}")
    if vocab_size < 1:
        raise MetacondError(f"vocab_size must be positive, got {vocab_size}")
    kw = dict(SIZES[size])
    if max_position_embeddings is not None:
        kw["max_position_embeddings"] = max_position_embeddings
    kw.update({k: v for k, v in overrides.items() if v is not None})
    cfg = LlamaConfig(vocab_size=vocab_size, bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                      rope_theta=rope_theta, tie_word_embeddings=tie_word_embeddings, hidden_act="silu", rms_norm_eps=1e-5,
                      attention_bias=False, mlp_bias=False, initializer_range=0.02, **kw)
    cfg._attn_implementation = attn_implementation
    return cfg


def count_parameters(size: str, vocab_size: int, tie_word_embeddings: bool = False) -> int:
    """Exact parameter count of a size without allocating it."""
    if size not in SIZES:
        raise MetacondError(f"unknown model size {size!r}; choose from {', '.join(SIZES)}")
    s = SIZES[size]
    h, L, i = s["hidden_size"], s["num_hidden_layers"], s["intermediate_size"]
    head_dim = h // s["num_attention_heads"]
    kv = s["num_key_value_heads"] * head_dim
    per_layer = h * h * 2 + 2 * h * kv + 3 * h * i + 2 * h  # q,o + k,v + SwiGLU + two RMSNorms
    emb = vocab_size * h * (1 if tie_word_embeddings else 2)
    return L * per_layer + emb + h  # + final norm
