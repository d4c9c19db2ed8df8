"""The localization study's n-gram regime baselines: proper distributions, and metadata that carries signal is worth bits."""

import numpy as np
import pytest

from metacond.studies.localization.ngram import _Counts, summarize


def _probs(glob: _Counts, val: _Counts | None, prev: int, V: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    w = np.arange(V)
    p_uni = (glob.uni[w] + 1.0) / (glob.N + V)
    pv = np.full(V, prev)
    p_bi = glob.backoff(p_uni, pv, w)
    return p_uni, p_bi, None if val is None else val.backoff(p_bi, pv, w)


def test_every_baseline_is_a_distribution_over_the_vocabulary():
    rng = np.random.default_rng(0)
    V, bos = 12, 0
    seqs = [rng.integers(1, V, rng.integers(3, 30)) for _ in range(40)]
    glob = _Counts(seqs, bos, V)
    val = _Counts(seqs[:7] + [np.array([], np.int64)], bos, V)  # an empty article is ignored, not a crash
    for prev in (bos, 3, 11):  # seen contexts and (for the value model) unseen ones
        p_uni, p_bi, p_val = _probs(glob, val, prev, V)
        assert p_uni.sum() == pytest.approx(1.0) and p_bi.sum() == pytest.approx(1.0) and p_val.sum() == pytest.approx(1.0)
        assert (p_bi > 0).all() and (p_val > 0).all()
    w = np.arange(V)
    p_uni = (glob.uni[w] + 1.0) / (glob.N + V)
    assert val.backoff_unigram(p_uni, w).sum() == pytest.approx(1.0)


def test_metadata_that_predicts_the_text_buys_bits_and_noise_does_not():
    """Two 'countries' whose articles use disjoint halves of the vocabulary: the value's counts halve the unigram cost."""
    rng = np.random.default_rng(1)
    V, bos = 41, 0
    a = [rng.integers(1, 21, 50) for _ in range(60)]
    b = [rng.integers(21, 41, 50) for _ in range(60)]
    glob = _Counts(a + b, bos, V)
    by = {"a": _Counts(a, bos, V), "b": _Counts(b, bos, V)}
    test = rng.integers(1, 21, 200)
    p_uni = (glob.uni[test] + 1.0) / (glob.N + V)
    with_meta = by["a"].backoff_unigram(p_uni, test)
    gain = np.log2(with_meta).sum() - np.log2(p_uni).sum()
    assert gain / len(test) > 0.8  # about one bit per token: the value rules out half the vocabulary
    # A value whose articles look like everyone's buys (almost) nothing.
    mixed = _Counts([x for pair in zip(a[:30], b[:30]) for x in pair], bos, V)
    assert abs(np.log2(mixed.backoff_unigram(p_uni, test)).sum() - np.log2(p_uni).sum()) / len(test) < 0.1


def test_summary_weighs_continents_equally():
    items = [{"continent": "asia", "bytes": 100.0, "bits": {"bigram": 150.0}}, {"continent": "asia", "bytes": 300.0, "bits": {"bigram": 450.0}},
             {"continent": "africa", "bytes": 100.0, "bits": {"bigram": 250.0}}]
    assert summarize(items)["bigram"] == pytest.approx((1.5 + 2.5) / 2)
