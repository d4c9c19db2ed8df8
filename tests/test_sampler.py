import numpy as np
import pytest
from bruteforce import all_languages

from metacond.data_builders.pcfg import PCFGInference, preset_grammar, sample


def test_same_seed_same_data_whatever_num_proc():
    g = preset_grammar("small")
    a = sample(g, 5000, seed=11, num_proc=1, with_labels=True)
    b = sample(g, 5000, seed=11, num_proc=2, with_labels=True)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.metadata, b.metadata)
    np.testing.assert_array_equal(a.labels, b.labels)
    c = sample(g, 5000, seed=12)
    assert not np.array_equal(a.metadata, c.metadata)


def test_frequencies_match_exact_probabilities():
    g = preset_grammar("tiny")
    _, marg = all_languages(g, max_len=9)
    b = sample(g, 20000, seed=0)
    counts = {}
    for s in b.as_lists():
        k = tuple(g.terminals[i] for i in s)
        counts[k] = counts.get(k, 0) + 1
    assert set(counts) <= set(marg)
    # Pearson chi-square over strings with expected count >= 5.
    keys = [k for k in marg if marg[k] * 20000 >= 5]
    exp = np.array([marg[k] * 20000 for k in keys])
    obs = np.array([counts.get(k, 0) for k in keys])
    chi2 = ((obs - exp) ** 2 / exp).sum()
    assert chi2 < len(keys) + 5 * np.sqrt(2 * len(keys))


def test_metadata_prior_and_labels():
    g = preset_grammar("small")
    b = sample(g, 8000, seed=3, with_labels=True)
    for d in range(g.depth):
        freq = np.bincount(b.metadata[:, d], minlength=2) / len(b)
        np.testing.assert_allclose(freq, [0.5, 0.5], atol=0.03)
    assert b.labels.shape == (b.tokens.shape[0], g.depth)
    assert (b.labels[:, 0] == g.nonterminals.index("S")).all()
    lvl = np.array([g.level_of(a) for a in g.nonterminals])
    for d in range(g.depth):
        assert (lvl[b.labels[:, d]] == d).all()
    inf = PCFGInference(g)
    assert inf.accepts(b.as_lists()[:300], [tuple(m) for m in b.metadata[:300]]).all()


def test_zero_and_negative_sizes():
    g = preset_grammar("tiny")
    assert len(sample(g, 0)) == 0
    with pytest.raises(ValueError, match=">= 0"):
        sample(g, -1)
