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
    num = np.array([[1.0, 3.0, np.nan], [2.0, np.nan, 4.0]])
    den = np.array([[2.0, 2.0, 1.0], [1.0, 1.0, 3.0]])
    d = paired_difference(num, den, n_boot=200)
    assert d.estimate == pytest.approx(np.mean([4.0 / 4.0, 6.0 / 4.0]))
    assert d.cells == 2 and d.items == 3


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
