"""The shared verdict module on synthetic paired data whose answer is known."""

import numpy as np
import pytest

from metacond.eval_tasks.stats import VERDICTS, Verdict, non_inferiority, paired_difference, superiority


def _accuracy_cells(rng, n_items, cells, p_base, deficit):
    """Two models' 0/1 correctness on the same items in several cells; model B loses ``deficit`` per cell."""
    a = (rng.random((cells, n_items)) < p_base).astype(float)
    # B shares A's answers except on a random subset where it flips a correct answer to wrong: a paired deficit.
    flip = (rng.random((cells, n_items)) < deficit / p_base) & (a == 1)
    b = np.where(flip, 0.0, a)
    return a, b


def test_planted_deficit_on_informative_cells_is_reproduced():
    rng = np.random.default_rng(0)
    a, b = _accuracy_cells(rng, 1500, 3, 0.75, 0.05)
    d = paired_difference(a - b, seed=1)
    assert 0.03 < d.estimate < 0.07 and d.ci_low > 0
    v = superiority("short-prompt deficit", d, 0.05, "accuracy")
    assert v.verdict == "reproduced"


def test_identical_models_are_never_reproduced():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        a = (rng.random((3, 1000)) < 0.7).astype(float)
        noise_b = (rng.random((3, 1000)) < 0.7).astype(float)  # same accuracy, independent answers
        for b in (a, noise_b):
            v = superiority("x", paired_difference(a - b, seed=seed), 0.05, "accuracy")
            assert v.verdict != "reproduced"


def test_reversed_effect_is_contradicted():
    rng = np.random.default_rng(2)
    a, b = _accuracy_cells(rng, 1500, 3, 0.75, 0.05)
    v = superiority("x", paired_difference(b - a, seed=0), 0.05, "accuracy")
    assert v.verdict == "contradicted"


def test_tiny_sample_is_inconclusive():
    rng = np.random.default_rng(3)
    a, b = _accuracy_cells(rng, 20, 1, 0.75, 0.05)
    assert superiority("x", paired_difference(a - b), 0.05, "accuracy").verdict == "inconclusive"
    # Enough items but a huge variance: the detectable effect exceeds the claim.
    a, b = _accuracy_cells(rng, 60, 1, 0.5, 0.0)
    v = superiority("x", paired_difference(a - rng.permutation(a.ravel())[None]), 0.05, "accuracy")
    assert v.verdict == "inconclusive" and "underpowered" in v.reason


def test_powered_null_is_not_reproduced():
    rng = np.random.default_rng(4)
    diff = rng.choice([-1.0, 0.0, 1.0], p=[0.02, 0.96, 0.02], size=(2, 20_000))  # models disagree rarely, symmetrically
    v = superiority("x", paired_difference(diff), 0.05, "accuracy")
    assert v.verdict == "not reproduced"


def test_uninformative_cells_give_no_verdict():
    d = paired_difference(np.ones((1, 500)))
    v = superiority("x", d, 0.05, "accuracy", informative=False, why_uninformative="Bayes at chance")
    assert v.verdict == "inconclusive" and v.reason == "Bayes at chance"


def test_pairing_beats_unpaired_intervals():
    """Per-item noise shared by both models cancels in the paired interval."""
    rng = np.random.default_rng(5)
    item = rng.normal(0, 1.0, 300)  # item difficulty, common to both models
    a = item + 0.05 + rng.normal(0, 0.01, 300)
    b = item
    d = paired_difference(a - b)
    assert d.ci_low > 0.04 and d.ci_high < 0.06
    unpaired_half = 1.96 * np.hypot(a.std() / np.sqrt(300), b.std() / np.sqrt(300))
    assert unpaired_half > 5 * (d.ci_high - d.ci_low) / 2


def test_ratio_cells_and_missing_items():
    """Per-cell ratios of sums (per-token losses), cells weighted equally, NaN items left out of a cell."""
    rng = np.random.default_rng(12)
    num = rng.normal(1.0, 0.5, (2, 60))
    den = rng.integers(1, 5, (2, 60)).astype(float)
    num[0, 40:] = np.nan  # cell 0 has items 0..39, cell 1 items 20..59
    num[1, :20] = np.nan
    d = paired_difference(num, den, n_boot=200)
    want = np.mean([num[0, :40].sum() / den[0, :40].sum(), num[1, 20:].sum() / den[1, 20:].sum()])
    assert d.estimate == pytest.approx(want)
    assert d.cells == 2 and d.items == 60 and d.ci_low < want < d.ci_high


@pytest.mark.parametrize("harm,expected", [(0.001, "reproduced"), (0.05, "contradicted"), (0.0, "reproduced")])
def test_non_inferiority(harm, expected):
    rng = np.random.default_rng(6)
    x = harm + rng.normal(0, 0.01, 4000)
    v = non_inferiority("no worse", paired_difference(x), 0.01, "nats/token")
    assert v.verdict == expected


def test_worse_in_every_comparison_never_reads_no_worse_beyond_margin():
    """A model worse on every item by more than the margin is never 'reproduced'."""
    rng = np.random.default_rng(7)
    harm = 0.02 + np.abs(rng.normal(0, 0.01, 53))
    assert non_inferiority("no worse", paired_difference(harm), 0.01, "bits/byte").verdict == "contradicted"
    harm = np.abs(rng.normal(0.012, 0.02, 53))
    assert non_inferiority("no worse", paired_difference(harm), 0.01, "bits/byte").verdict in ("not reproduced", "contradicted", "inconclusive")


def test_verdict_vocabulary_is_enforced():
    with pytest.raises(ValueError):
        Verdict("x", "partly reproduced", "superiority", 0.1, "u", "r")
    assert set(VERDICTS) == {"reproduced", "contradicted", "not reproduced", "inconclusive"}


def test_superiority_branches_and_size_note():
    rng = np.random.default_rng(8)
    # Significant but the whole interval below the paper's effect: still "reproduced", and the reason says smaller.
    v = superiority("x", paired_difference(0.005 + rng.normal(0, 0.01, 20_000)), 0.05, "u")
    assert v.verdict == "reproduced" and "smaller" in v.reason
    # Covers both 0 and the effect, powered enough that the MDE is below the effect.
    z = rng.normal(0, 1, 400)
    d = paired_difference(0.025 + 0.3 * (z - z.mean()) / z.std())  # estimate 0.025, SE ~0.015: CI ~(-0.004, 0.054), MDE ~0.042
    assert d.ci_low < 0 < 0.05 < d.ci_high and d.mde < 0.05
    v = superiority("x", d, 0.05, "u")
    assert v.verdict == "inconclusive" and "covers" in v.reason
    # A powered null with a baseline that has nothing to lose is inconclusive, not "not reproduced".
    null = paired_difference(rng.choice([-1.0, 0.0, 1.0], p=[0.02, 0.96, 0.02], size=20_000))
    assert superiority("x", null, 0.05, "u").verdict == "not reproduced"
    v = superiority("x", null, 0.05, "u", baseline_signal=False, why_no_signal="at chance")
    assert v.verdict == "inconclusive" and v.reason == "at chance"


def test_non_inferiority_not_reproduced_and_inconclusive_branches():
    rng = np.random.default_rng(9)
    # Significantly worse, interval straddling the margin.
    v = non_inferiority("x", paired_difference(0.01 + rng.normal(0, 0.03, 800)), 0.01, "u")
    assert v.verdict == "not reproduced"
    # Interval covering 0 and the margin.
    v = non_inferiority("x", paired_difference(rng.normal(0, 0.2, 200)), 0.01, "u")
    assert v.verdict == "inconclusive"


def test_clusters_widen_the_interval_of_duplicated_items():
    """Ten copies of each of 40 items are not 400 independent items."""
    rng = np.random.default_rng(10)
    base = rng.normal(0.02, 0.1, 40)
    x = np.repeat(base, 10)
    ids = np.repeat(np.arange(40), 10)
    naive = paired_difference(x)
    clustered = paired_difference(x, clusters=ids)
    assert clustered.estimate == pytest.approx(naive.estimate)
    assert (clustered.ci_high - clustered.ci_low) > 2.5 * (naive.ci_high - naive.ci_low)
    assert clustered.items == 40 and naive.items == 400


def test_small_cells_are_dropped_not_left_to_explode():
    rng = np.random.default_rng(11)
    big = rng.normal(0.0, 0.1, 200)
    m = np.full((2, 203), np.nan)
    m[0, :200] = big
    m[1, 200:] = [5.0, -5.0, 4.0]  # a 3-item cell
    d = paired_difference(m)
    assert d.cells == 1 and d.ci_high < 0.1


def test_negated_flips_estimate_and_interval():
    d = paired_difference(0.03 + np.random.default_rng(13).normal(0, 0.05, 500))
    n = d.negated()
    assert (n.estimate, n.ci_low, n.ci_high) == (-d.estimate, -d.ci_high, -d.ci_low) and n.se == d.se and n.items == d.items
