"""Localization claims on synthetic per-article score tables whose answer is known."""

import math

import numpy as np
import pytest

from metacond.eval_tasks.localization.report import claims

CONTS = ("africa", "america", "asia")


def _items(bits_per_byte: dict[str, np.ndarray], cond: str, nbytes: np.ndarray) -> list[dict]:
    out = []
    for c, bpb in bits_per_byte.items():
        for k, (b, n) in enumerate(zip(bpb, nbytes)):
            out.append({"family": "ppl", "condition": cond, "continent": c, "country": "xx", "id": f"{c}-{k}", "nll": float(b * n * math.log(2)),
                        "bytes": float(n)})
    return out


def _results(meta_shift: float, n: int = 53, seed: int = 0) -> dict:
    """Global models with and without metadata on the same articles; the metadata model's bits/byte are shifted by
    ``meta_shift`` (positive: worse) in both conditions, with article-level noise shared by the two models."""
    rng = np.random.default_rng(seed)
    nbytes = rng.integers(800, 3000, n).astype(float)
    base = {c: 2.6 + rng.normal(0, 0.15, n) for c in CONTS}  # article difficulty, common to both models
    noise = lambda: {c: base[c] + rng.normal(0, 0.005, n) for c in CONTS}  # noqa: E731
    nometa = noise()
    meta = {c: v + meta_shift for c, v in noise().items()}
    ev = lambda items: {"eval": {"items": items, "regional": [], "summary": []}}  # noqa: E731
    return {"plan": {"preset_config": {"sizes": ["tiny"]}},
            "runs": {"tiny-global-nometa": ev(_items(nometa, "none", nbytes)),
                     "tiny-global-meta": ev(_items(meta, "full", nbytes) + _items(meta, "none", nbytes))},
            "mcq": {}}


def _by_start(verdicts, prefix):
    return next(v for v in verdicts if v.finding.startswith(prefix))


def test_metadata_model_worse_everywhere_never_reads_reproduced():
    """The reference run's pattern: +0.013 to +0.051 bits/byte worse in every comparison."""
    for shift in (0.013, 0.03, 0.051):
        v = claims(_results(shift))
        lowers = _by_start(v, "Metadata conditioning lowers perplexity")
        no_worse = _by_start(v, "Without metadata at test time")
        assert lowers.verdict == "contradicted", lowers.summary()
        assert no_worse.verdict != "reproduced", no_worse.summary()
        assert lowers.difference["estimate"] == pytest.approx(-shift, abs=0.003)


def test_planted_gain_is_reproduced_and_equal_models_are_not():
    v = claims(_results(-0.05))
    assert _by_start(v, "Metadata conditioning lowers perplexity").verdict == "reproduced"
    assert _by_start(v, "Without metadata at test time").verdict == "reproduced"
    v = claims(_results(0.0))
    assert _by_start(v, "Metadata conditioning lowers perplexity").verdict in ("not reproduced", "inconclusive")


def test_claims_without_models_are_inconclusive_not_skipped():
    v = claims(_results(0.0))
    region = _by_start(v, "Region-specific models beat")
    assert region.verdict == "inconclusive" and region.reason == "no region models"
