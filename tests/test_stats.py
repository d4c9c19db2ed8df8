"""The shared verdict module on synthetic paired data whose answer is known."""

import numpy as np
import pytest

from metacond.eval_tasks.stats import MIN_SEEDS, VERDICTS, Verdict, non_inferiority, paired_difference, seeded_difference, superiority


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
    # Significant but the whole interval inside ±SESOI: negligible, so "not reproduced", never "reproduced".
    v = superiority("x", paired_difference(0.005 + rng.normal(0, 0.01, 20_000)), 0.05, "u")
    assert v.verdict == "not reproduced" and "negligible" in v.reason and "significant" in v.reason
    # The same the other way round is not "contradicted" either.
    v = superiority("x", paired_difference(-0.005 + rng.normal(0, 0.01, 20_000)), 0.05, "u")
    assert v.verdict == "not reproduced" and "negligible" in v.reason
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


def _arm(rng, base, seeds, offset_sd, shift=0.0):
    """``seeds`` training runs of one configuration scored on the same items: each run adds its own offset
    (run-to-run noise) and a little per-item noise to the items' shared scores."""
    return [base + shift + rng.normal(0, offset_sd) + rng.normal(0, 0.05, base.shape) for _ in range(seeds)]


def test_planted_seed_offsets_of_one_configuration_are_never_definite():
    """Two arms of the *same* configuration whose runs differ by a seed offset far above the item SE: the item-only
    interval calls most of them significant; the seeded interval keeps the false-positive rate near its nominal
    5%, and definite words stay rarer still (a significant difference inside ±SESOI is 'not reproduced')."""
    rng = np.random.default_rng(20)
    item_only, seeded, definite, ratios = 0, 0, 0, []
    for _ in range(200):
        base = rng.normal(2.0, 1.0, 1000)  # item difficulty, shared by every model
        a, b = _arm(rng, base, 2, 0.02), _arm(rng, base, 2, 0.02)
        d = seeded_difference(a, b, n_boot=200)
        naive = paired_difference(np.mean(a, 0) - np.mean(b, 0), n_boot=200)
        item_only += naive.ci_low > 0 or naive.ci_high < 0
        seeded += d.ci_low > 0 or d.ci_high < 0
        ratios.append(d.se / d.item_se)
        assert d.seeds == (2, 2)
        definite += superiority("x", d, 0.1, "u").verdict in ("reproduced", "contradicted")
    assert item_only > 120 and seeded <= 20 and definite <= 10 and np.median(ratios) > 5


def test_planted_effect_across_seeds_beyond_sesoi_is_reproduced():
    rng = np.random.default_rng(21)
    base = rng.normal(2.0, 1.0, 3000)
    a, b = _arm(rng, base, 3, 0.005, shift=0.08), _arm(rng, base, 3, 0.005)
    v = superiority("x", seeded_difference(a, b), 0.04, "u", source="test")
    assert v.verdict == "reproduced", v.summary()
    assert v.difference.seeds == (3, 3) and all(s > 0 for s in v.difference.seed_sd) and v.source == "test"
    # Reversed: contradicted. Significant but negligible (0.01 against a 0.04 SESOI, tiny seed noise): not reproduced.
    assert superiority("x", seeded_difference(b, a), 0.04, "u").verdict == "contradicted"
    small = seeded_difference(_arm(rng, base, 3, 0.001, shift=0.01), _arm(rng, base, 3, 0.001), n_boot=500)
    assert small.ci_low > 0
    assert superiority("x", small, 0.04, "u").verdict == "not reproduced"


def test_one_run_per_arm_reads_one_run_but_within_model_claims_keep_their_pairing():
    rng = np.random.default_rng(22)
    base = rng.normal(2.0, 1.0, 3000)
    a, b = _arm(rng, base, 1, 0.0, shift=0.3), _arm(rng, base, 1, 0.0)
    d = seeded_difference(a, b)
    assert d.one_run and d.ci_low > 0.2
    v = superiority("x", d, 0.05, "u")
    assert v.verdict == "inconclusive" and "one run" in v.reason and str(MIN_SEEDS) in v.reason
    assert non_inferiority("x", d, 0.05, "u").verdict == "inconclusive"
    # Within one model (metadata vs none): one seed keeps the item interval and gives a word.
    w = seeded_difference([a[0] - b[0]])
    assert not w.one_run and superiority("x", w, 0.05, "u").verdict == "reproduced"
    # Two seeds of a within-model effect: the seed spread enters with S - 1 degrees of freedom.
    w2 = seeded_difference([a[0] - b[0], a[0] - b[0] + 0.01])
    assert w2.df < 1e6 and w2.seeds == (2,) and w2.se > w.item_se


def test_seeded_estimate_is_the_difference_of_seed_means():
    rng = np.random.default_rng(23)
    num = [rng.normal(1, 0.5, (2, 60)) for _ in range(3)]
    ref = [rng.normal(0.8, 0.5, (2, 60)) for _ in range(2)]
    den = rng.integers(1, 5, (2, 60)).astype(float)
    d = seeded_difference(num, ref, den, n_boot=200)
    per = lambda m: np.mean(m.sum(1) / den.sum(1))  # noqa: E731
    assert d.estimate == pytest.approx(np.mean([per(m) for m in num]) - np.mean([per(m) for m in ref]))
    assert d.seed_sd[0] == pytest.approx(np.std([per(m) for m in num], ddof=1))


def test_a_study_directory_refuses_other_settings(tmp_path):
    from metacond import MetacondError
    from metacond.studies.study_key import check_study_key

    check_study_key(tmp_path, {"preset": {"steps": 10}, "seed": 0})
    check_study_key(tmp_path, {"preset": {"steps": 10}, "seed": 0})  # the same settings: resumed
    with pytest.raises(MetacondError, match=r"\(seed differ\)"):
        check_study_key(tmp_path, {"preset": {"steps": 10}, "seed": 1})


def test_underpowered_reason_names_what_would_reach_the_effect():
    from metacond.eval_tasks.stats import PairedDifference

    # Seed spread dominates: the plan asks for seeds; more of them bring the MDE under the effect.
    seedy = PairedDifference(0.01, -0.2, 0.22, 0.06, 500, 1, item_se=0.005, seeds=(2, 2), seed_sd=(0.06, 0.06), df=3.0, between=True)
    plan = seedy.power_plan(0.05)
    n = int(plan.split("about ")[1].split(" seeds")[0])
    assert "seeds per arm" in plan and 25 <= n <= 28  # normal approximation: 0.0072/n + 0.005^2 <= (0.05/2.80)^2 at n >= 25
    # Item noise alone exceeds the effect: no number of seeds helps.
    itemy = PairedDifference(0.01, -0.2, 0.22, 0.06, 60, 1, item_se=0.036, seeds=(2, 2), seed_sd=(0.03, 0.08), df=3.0, between=True)
    assert "4.1x the paired items" in itemy.power_plan(0.05)
    v = superiority("x", seedy, 0.05, "accuracy")
    assert v.verdict == "inconclusive" and "seeds per arm" in v.reason
