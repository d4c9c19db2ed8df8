"""Localization claims on synthetic per-article score tables whose answer is known."""

import math

import numpy as np
import pytest

from metacond.studies.localization.claims import claims
from metacond.studies.localization.results import LocalizationRegime, LocalizationStudyResults

CONTS = ("africa", "america", "asia")


def _items(bits_per_byte: dict[str, np.ndarray], cond: str, nbytes: np.ndarray) -> list[dict]:
    out = []
    for c, bpb in bits_per_byte.items():
        for k, (b, n) in enumerate(zip(bpb, nbytes)):
            out.append({"family": "ppl", "condition": cond, "continent": c, "country": "xx", "id": f"{c}-{k}", "nll": float(b * n * math.log(2)),
                        "bytes": float(n)})
    return out


def _results(meta_shift: float, n: int = 53, seed: int = 0, seeds: int = 2, seed_sd: float = 0.002, in_regime: bool = True) -> LocalizationStudyResults:
    """Global models with and without metadata on the same articles, ``seeds`` runs each; the metadata model's bits/byte are
    shifted by ``meta_shift`` (positive: worse) in both conditions, with article-level noise shared by every model and a
    per-run offset of SD ``seed_sd`` (training noise)."""
    rng = np.random.default_rng(seed)
    nbytes = rng.integers(800, 3000, n).astype(float)
    base = {c: 2.6 + rng.normal(0, 0.15, n) for c in CONTS}  # article difficulty, common to every model
    noise = lambda: {c: base[c] + rng.normal(0, seed_sd) + rng.normal(0, 0.005, n) for c in CONTS}  # noqa: E731
    runs = {}
    for k in range(seeds):
        nometa, meta = noise(), {c: v + meta_shift for c, v in noise().items()}
        ev = lambda items: {"items": items, "regional": [], "summary": []}  # noqa: E731
        suffix = f"-s{k}" if seeds > 1 else ""
        runs[f"tiny-global-nometa{suffix}"] = {"run": {"arm": "tiny-global-nometa", "seed": k, "family": "main", "template": "none"},
                                              "training": {"status": "trained"}, "eval": ev(_items(nometa, "none", nbytes))}
        runs[f"tiny-global-meta{suffix}"] = {"run": {"arm": "tiny-global-meta", "seed": k, "family": "main", "template": "full"},
                                            "training": {"status": "trained"}, "eval": ev(_items(meta, "full", nbytes) + _items(meta, "none", nbytes))}
    reg = LocalizationRegime(ngram_bits_per_byte={}, model_bits_per_byte=None, model_seed_sd=None, gate_line="bigram", language_model=in_regime,
                             why="test models against a test bigram", mcq_base_accuracy=None, mcq_strongest_baseline=0.25, mcq_knows=False)
    return LocalizationStudyResults(preset="synthetic", input=None, plan={"preset_config": {"sizes": ["tiny"]}}, runs=runs, meta_template="full",
                                    eval_body_bytes=448, regime=reg)


def _by_start(verdicts, prefix):
    return next(v for v in verdicts if v.finding.startswith(prefix))


def test_metadata_model_worse_everywhere_never_reads_reproduced():
    """The old reference run's pattern: +0.05 to +0.08 bits/byte worse in every comparison (beyond the ~0.046 SESOI)."""
    for shift in (0.06, 0.08):
        v = claims(_results(shift))
        lowers = _by_start(v, "Metadata conditioning lowers perplexity")
        no_worse = _by_start(v, "Without metadata at test time")
        assert lowers.verdict == "contradicted", lowers.summary()
        assert no_worse.verdict != "reproduced", no_worse.summary()
        assert lowers.difference.estimate == pytest.approx(-shift, abs=0.003)


def test_planted_gain_is_reproduced_and_equal_models_are_not():
    v = claims(_results(-0.05))
    assert _by_start(v, "Metadata conditioning lowers perplexity").verdict == "reproduced"
    assert _by_start(v, "Without metadata at test time").verdict == "reproduced"
    v = claims(_results(0.0))
    assert _by_start(v, "Metadata conditioning lowers perplexity").verdict in ("not reproduced", "inconclusive")


def test_a_run_offset_smaller_than_the_sesoi_is_never_contradicted():
    """A +0.015 bits/byte offset (significant at the article level; the SESOI is ~0.046): never a definite 'contradicted'."""
    v = _by_start(claims(_results(0.015)), "Metadata conditioning lowers perplexity")
    assert v.verdict in ("not reproduced", "inconclusive"), v.summary()


def test_one_run_per_arm_and_out_of_regime_give_no_definite_word():
    v = _by_start(claims(_results(-0.2, seeds=1)), "Metadata conditioning lowers perplexity")
    assert v.verdict == "inconclusive" and "one run" in v.reason
    # Within one model (its metadata vs none) one run still gives a word.
    w = _by_start(claims(_results(-0.2, seeds=1)), "Given its metadata")
    assert w.verdict in ("reproduced", "not reproduced", "contradicted")
    out = _by_start(claims(_results(-0.2, in_regime=False)), "Metadata conditioning lowers perplexity")
    assert out.verdict == "inconclusive" and out.reason.startswith("out of regime")


def test_claims_without_models_are_inconclusive_not_skipped():
    v = claims(_results(0.0))
    region = _by_start(v, "Region-specific models beat")
    assert region.verdict == "inconclusive" and region.reason == "no region models in this preset"
