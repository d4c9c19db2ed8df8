"""Exact inference against brute-force enumeration of small grammars."""

import numpy as np
import pytest
from bruteforce import all_languages, prior

from metacond.data_builders.pcfg import GrammarError, GrammarSpec, PCFGInference, generate_grammar, parse_rules_text, preset_grammar, sample


@pytest.fixture(scope="module")
def tiny():
    g = generate_grammar(GrammarSpec(depth=2, symbols_per_level=[1, 2], variants_per_level=[2, 3], rules_per_symbol=[2, 3],
                                     rhs_lengths=[2, 3], rhs_length_weights=[0.6, 0.4], num_terminals=2, seed=3), name="t")
    per, marg = all_languages(g, max_len=9)
    return g, PCFGInference(g), per, marg


def test_language_is_complete(tiny):
    g, inf, per, marg = tiny
    assert sum(marg.values()) == pytest.approx(1.0, abs=1e-12)
    assert len(marg) > 20


def test_log_prob_and_per_j(tiny):
    g, inf, per, marg = tiny
    xs = list(marg)
    np.testing.assert_allclose(inf.log_prob(xs), np.log([marg[x] for x in xs]), atol=1e-10)
    lpj = inf.log_prob_given_j(xs)
    for r, j in enumerate(map(tuple, inf.c.root_meta)):
        np.testing.assert_allclose(np.exp(lpj[:, r]), [per[j].get(x, 0.0) for x in xs], atol=1e-12)


def test_log_prob_with_metadata_prefix(tiny):
    g, inf, per, marg = tiny
    xs = list(marg)[:15]
    for m in [(0,), (1,), (1, 2)]:
        js = [j for j in per if j[: len(m)] == m]
        z = sum(prior(g, j) for j in js)
        want = [sum(prior(g, j) / z * per[j].get(x, 0.0) for j in js) for x in xs]
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(inf.log_prob(xs, m), np.log(want), atol=1e-10)


def test_membership_matches_enumeration_on_random_strings(tiny):
    g, inf, per, marg = tiny
    rng = np.random.default_rng(0)
    xs = [tuple(rng.choice(g.terminals, size=int(rng.integers(1, 10)))) for _ in range(3000)]
    truth = np.array([x in marg for x in xs])
    assert 10 < truth.sum() < len(xs)  # the check sees both outcomes
    np.testing.assert_array_equal(inf.accepts(xs), truth)
    # With metadata: membership of the j-restricted language.
    m = (1,)
    truth_m = np.array([any(x in per[j] for j in per if j[:1] == m) for x in xs])
    np.testing.assert_array_equal(inf.accepts(xs, m), truth_m)


def test_prefix_probabilities_posterior_and_next_token(tiny):
    g, inf, per, marg = tiny
    rng = np.random.default_rng(1)
    xs = list(marg)
    for x in [xs[i] for i in rng.choice(len(xs), 6, replace=False)]:
        n = len(x)
        for m in [None, (1,)]:
            js = [j for j in per if m is None or j[: len(m)] == m]
            z = sum(prior(g, j) for j in js)

            def pre(t, w=None):
                w = x[:t] if w is None else w
                return sum(prior(g, j) / z * sum(p for y, p in per[j].items() if y[: len(w)] == w) for j in js)

            np.testing.assert_allclose(np.exp(inf.prefix_log_probs(x, m)), [pre(t) for t in range(n + 1)], atol=1e-12)
            dist = inf.next_token_distribution(x, m)
            for t in range(n + 1):
                if pre(t) == 0.0:  # impossible under this metadata: undefined
                    assert np.isnan(dist[t]).all()
                    continue
                assert dist[t].sum() == pytest.approx(1.0, abs=1e-10)
                want = [pre(t + 1, x[:t] + (a,)) / pre(t) for a in g.terminals]
                full = sum(prior(g, j) / z * per[j].get(x[:t], 0.0) for j in js)
                np.testing.assert_allclose(dist[t], want + [full / pre(t)], atol=1e-10)
        post = inf.posterior(x)
        for d, k in enumerate(g.num_variants):
            for t in range(n + 1):
                w = np.zeros(k)
                for j in per:
                    w[j[d]] += prior(g, j) * sum(p for y, p in per[j].items() if y[:t] == x[:t])
                np.testing.assert_allclose(post[d][t], w / w.sum(), atol=1e-10)


def test_token_losses_sum_to_log_prob(tiny):
    g, inf, per, marg = tiny
    x = max((y for y in marg if y in per[(0, 1)]), key=len)
    assert inf.token_log_losses(x).sum() == pytest.approx(-inf.log_prob([x])[0], abs=1e-9)
    assert inf.token_log_losses(x, (0, 1)).sum() == pytest.approx(-inf.log_prob([x], (0, 1))[0], abs=1e-9)


PLAIN = """
S -> S S [0.3] | A [0.2] | a b [0.3] | b [0.2]
A -> a [0.6] | B a [0.4]
B -> b
"""


def test_plain_recursive_grammar_with_unit_rules():
    g = parse_rules_text(PLAIN)
    assert g.depth == 0 and g.start == "S"
    per, _ = all_languages(g, max_len=6)
    lang = per[()]
    inf = PCFGInference(g)
    xs = [x for x in lang if len(x) <= 5]
    np.testing.assert_allclose(inf.log_prob(xs), np.log([lang[x] for x in xs]), atol=1e-10)
    rng = np.random.default_rng(0)
    rand = [tuple(rng.choice(["a", "b"], size=int(rng.integers(1, 6)))) for _ in range(300)]
    np.testing.assert_array_equal(inf.accepts(rand), [x in lang for x in rand])
    # S -> S S is left-recursive: prefix quantities say so in one line.
    with pytest.raises(GrammarError, match="left recursion"):
        inf.prefix_log_probs(["a"])


def test_cfg3_style_import_accepts_own_samples_and_rejects_corruptions():
    text = """
    22 -> 21 20 | 20 19 | 19 21 20
    21 -> 18 16 | 16 18 17 | 17 16
    20 -> 17 | 16 18 | 18 17 16
    19 -> 16 17 18 | 17 18 | 18 16
    18 -> 3 1 | 1 2 3 | 2 2
    17 -> 2 3 | 3 3 1 | 1 1
    16 -> 1 3 | 3 2 2 | 2 1 3
    """
    g = parse_rules_text(text, name="cfg3-mini")
    inf = PCFGInference(g)
    b = sample(g, 300, seed=0)
    seqs = [[g.terminals[i] for i in s] for s in b.as_lists()]
    assert inf.accepts(seqs).all()
    assert np.isfinite(inf.log_prob(seqs)).all()
    per, _ = all_languages(g, max_len=14)
    lang = per[()]
    rng = np.random.default_rng(5)
    corrupted = []
    for s in seqs[:200]:
        s = list(s)
        s[int(rng.integers(len(s)))] = str(rng.choice(["1", "2", "3"]))
        corrupted.append(tuple(s))
    short = [c for c in corrupted if len(c) <= 14]
    assert 0 < sum(c not in lang for c in short)
    np.testing.assert_array_equal(inf.accepts(short), [c in lang for c in short])


def test_long_sequences_do_not_underflow():
    g = preset_grammar("paper")
    inf = PCFGInference(g)
    b = sample(g, 20, seed=0)
    seqs = b.as_lists()
    lp = inf.log_prob(seqs)
    assert np.isfinite(lp).all() and lp.min() < -50  # far below where exp() would underflow in a probability-space chart
    # log p(x) = sum of exact next-token losses, even for n ~ 200.
    x = max(seqs, key=len)
    assert inf.token_log_losses(x).sum() == pytest.approx(-lp[seqs.index(x)], rel=1e-9)


def test_posterior_concentrates_on_true_metadata_with_long_prompts():
    g = preset_grammar("paper")
    inf = PCFGInference(g)
    b = sample(g, 10, seed=4)
    hits = 0
    for x, j in zip(b.as_lists(), b.metadata):
        post = inf.posterior(x)
        hits += sum(int(np.argmax(post[d][-1]) == j[d]) for d in range(g.depth))
        for d in range(g.depth):  # with no tokens the posterior is the prior
            np.testing.assert_allclose(post[d][0], g.priors[d])
    assert hits >= 0.9 * 10 * g.depth


def test_bad_inputs():
    g = preset_grammar("tiny")
    inf = PCFGInference(g)
    with pytest.raises(GrammarError, match="unknown terminal"):
        inf.accepts([["t0", "zz"]])
    with pytest.raises(GrammarError, match="out of range"):
        inf.accepts([[0, 7]])
    with pytest.raises(GrammarError, match="depth"):
        inf.log_prob([[0, 1]], (0, 0, 0))
    assert not inf.accepts([[]])[0]
