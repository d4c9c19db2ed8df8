"""Verdicts for every study: paired differences over items *and* training seeds, effect sizes, four words.

Two models scored on the same items (sequences, questions, articles) are compared item by item: the
statistic is a difference of the two models' scores over shared items, so item difficulty cancels
(the pairing). A difference between two *trained* models is evidence only if it survives
retraining, so every arm is trained with several seeds (init and data order) and the interval
carries two sources of noise:

- **items**: a bootstrap over items (or clusters of items) of the seed-averaged paired difference;
- **seeds**: the spread of each arm's statistic across its seeds on the same items (a random-effects
  estimate, as in Pythia's and DataDecide's seed suites and AI2's "Signal and Noise": run-to-run
  noise is measured by retraining, not assumed away).

The two variances add; the interval is a t interval whose degrees of freedom come from the seeds
(Welch–Satterthwaite: the item part is treated as known, the seed part has S_A + S_B - 2 degrees of
freedom when pooled over two arms, S - 1 for a within-model effect). With two seeds per arm that is
t(2) = 4.30 instead of 1.96: wide, and honest about how little two runs say. An arm with one seed
gives no seed spread, so a between-model claim on it reads "inconclusive: one run". A within-model
claim (the same model with vs without metadata) keeps its item pairing and pools its seeds.

Every claim carries a **smallest effect of interest** (SESOI, fixed in code with its source) and is
judged against 0 *and* ±SESOI (equivalence-test logic, Lakens 2017):

- superiority (positive = the paper's direction): **reproduced** when the interval excludes 0 on the
  paper's side and is not wholly inside ±SESOI; **contradicted** when it excludes 0 on the other side
  and is not wholly inside ±SESOI; **not reproduced** when the whole interval lies inside ±SESOI
  (negligible, significant or not) or it excludes an effect of interest on the paper's side;
  **inconclusive** otherwise (too few items, one run, a baseline without signal, an interval covering
  0 and the SESOI);
- non-inferiority (positive = worse; the claim is "no worse than the margin"): **reproduced** when the
  whole interval lies below the margin; **contradicted** when it lies wholly beyond it; **not
  reproduced** for a significant harm whose interval reaches past the margin; else inconclusive.

The minimum detectable effect (MDE) is the true difference this test finds significant with 80%
power at a two-sided 5% level: (t_0.975 + t_0.80) * SE, with the t quantiles at the interval's
degrees of freedom (1.96 + 0.84 = 2.80 with item noise alone).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from metacond.eval_tasks.intervals import CONFIDENCE, percentile_interval, resampled_ratios

VERDICTS = ("reproduced", "contradicted", "not reproduced", "inconclusive")
# Fixed before any study run (2026-11-25) and never tuned toward a result (the confidence level in intervals.py).
POWER = 0.80
N_BOOTSTRAP = 2000
MIN_ITEMS = 30  # fewer shared items (or clusters) than this: no verdict
MIN_CELL_ITEMS = 20  # a cell with fewer items than this is left out of the statistic
# Fixed 2026-12-02, before the seeded reference runs: a between-model claim needs this many seeds per arm.
MIN_SEEDS = 2


def t_quantile(q: float, df: float) -> float:
    """Student t quantile; df = inf gives the normal quantile."""
    from scipy import stats as st

    return float(st.norm.ppf(q) if not np.isfinite(df) else st.t.ppf(q, df))


@dataclass
class PairedDifference:
    """A paired statistic (mean over cells of each cell's ratio of summed numerators to summed denominators),
    its interval and where its noise comes from.

    ``item_se``: bootstrap SE over items of the seed-averaged difference. ``seeds``: seeds per arm (one
    entry for a within-model difference). ``seed_sd``: each arm's SD of its statistic across seeds on the
    same items (NaN with one seed). ``se``: the total SE; ``df``: its degrees of freedom (inf = items only).
    """

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    items: int
    cells: int
    item_se: float = float("nan")
    seeds: tuple[int, ...] = (1,)
    seed_sd: tuple[float, ...] = (float("nan"),)
    df: float = float("inf")
    between: bool = False  # two separately trained arms (needs seeds) vs one model's within-item contrast

    def __post_init__(self) -> None:
        if not np.isfinite(self.item_se) and len(self.seeds) == 1 and self.seeds[0] == 1:
            self.item_se = self.se

    def negated(self) -> "PairedDifference":
        """The same comparison the other way round (B minus A): the interval flips with the estimate."""
        return PairedDifference(-self.estimate, -self.ci_high, -self.ci_low, self.se, self.items, self.cells, self.item_se,
                                tuple(reversed(self.seeds)), tuple(reversed(self.seed_sd)), self.df, self.between)

    @property
    def one_run(self) -> bool:
        """A between-model difference with fewer than MIN_SEEDS seeds in some arm: no run-to-run spread measured."""
        return self.between and min(self.seeds) < MIN_SEEDS

    @property
    def mde(self) -> float:
        if not np.isfinite(self.se):
            return float("nan")
        return float((t_quantile(1 - (1 - CONFIDENCE) / 2, self.df) + t_quantile(POWER, self.df)) * self.se)

    def power_plan(self, effect: float, max_seeds: int = 64) -> str:
        """What would bring the MDE down to ``effect``, from the measured noise: seeds per arm (the seed part of the
        variance shrinks as 1/seeds, the item part is held fixed) or, where the items alone are too noisy, items.

        A planning estimate: the item SE of a seed-averaged difference also shrinks a little with more seeds.
        """
        z = t_quantile(1 - (1 - CONFIDENCE) / 2, float("inf")) + t_quantile(POWER, float("inf"))
        item_factor = (z * self.item_se / effect) ** 2
        sds = [s for s in self.seed_sd if np.isfinite(s)]
        if item_factor > 1:
            spread = f", besides the seed spread (SD {math.sqrt(float(np.mean(np.square(sds)))):.4f})" if sds else ""
            return f"the item noise alone allows an MDE of {z * self.item_se:.4f}: about {item_factor:.1f}x the paired items would be needed{spread}"
        if not sds:
            return "no seed spread measured"
        pooled = float(np.mean(np.square(sds)))  # arms of equal seed counts: the pooled variance
        for n in range(max(self.seeds) + 1, max_seeds + 1):
            v_seed = pooled * len(self.seeds) / n
            df = (v_seed + self.item_se**2) ** 2 / (v_seed**2 / (len(self.seeds) * (n - 1)))
            mde = (t_quantile(1 - (1 - CONFIDENCE) / 2, df) + t_quantile(POWER, df)) * math.sqrt(v_seed + self.item_se**2)
            if mde <= effect:
                return f"the seed spread dominates (seed SD {math.sqrt(pooled):.4f} against item SE {self.item_se:.4f}): about {n} seeds per arm would be needed"
        return f"the seed spread dominates (seed SD {math.sqrt(pooled):.4f} against item SE {self.item_se:.4f}): more than {max_seeds} seeds per arm would be needed"

    @property
    def has_interval(self) -> bool:
        return bool(np.isfinite(self.estimate) and np.isfinite(self.ci_low))

    def interval(self) -> str:
        """'+0.0123 (+0.0010, +0.0236)': the estimate and its 95% interval, as every table prints them."""
        return f"{self.estimate:+.4f} ({self.ci_low:+.4f}, {self.ci_high:+.4f})"

    def ci(self) -> str:
        """'95% CI +0.0010 to +0.0236', as every sentence prints it."""
        return f"{CONFIDENCE:.0%} CI {self.ci_low:+.4f} to {self.ci_high:+.4f}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self) | {"mde": self.mde}
        d["seeds"], d["seed_sd"] = list(self.seeds), list(self.seed_sd)
        d["df"] = None if not np.isfinite(self.df) else self.df
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PairedDifference":
        """Back from ``to_dict`` (the MDE is derived, not stored; df None is infinite)."""
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        kw["seeds"], kw["seed_sd"] = tuple(kw.get("seeds") or (1,)), tuple(float("nan") if x is None else x for x in kw.get("seed_sd") or (float("nan"),))
        kw["df"] = float("inf") if kw.get("df") is None else kw["df"]
        return cls(**kw)


def _prepare(num: np.ndarray, den: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(num, den, present, kept cells): NaN items zeroed, weights default 1, cells too small to bootstrap marked."""
    num = np.atleast_2d(np.asarray(num, dtype=np.float64))
    present = np.isfinite(num)
    den = present.astype(np.float64) if den is None else np.where(present, np.atleast_2d(np.asarray(den, dtype=np.float64)), 0.0)
    if not np.all(np.isfinite(den)):
        raise ValueError("weights must be finite where differences are present")
    num = np.where(present, num, 0.0)
    keep = (present.sum(1) >= MIN_CELL_ITEMS) & (den.sum(1) > 0)
    return num, den, present, keep


def point_estimate(num: np.ndarray, den: np.ndarray | None = None) -> float:
    """The statistic of ``paired_difference`` without its bootstrap (the same cells kept)."""
    num, den, _, keep = _prepare(num, den)
    if not keep.any():
        ok = den.sum(1) > 0
        return float(np.mean(num[ok].sum(1) / den[ok].sum(1))) if ok.any() else float("nan")
    return float(np.mean(num[keep].sum(1) / den[keep].sum(1)))


def paired_difference(num: np.ndarray, den: np.ndarray | None = None, *, clusters: np.ndarray | None = None, n_boot: int = N_BOOTSTRAP,
                      seed: int = 0) -> PairedDifference:
    """Bootstrap over items of ``mean_c [sum_i num[c, i] / sum_i den[c, i]]`` (one model pair, one run each).

    ``num``: [cells, items] (or [items]) per-item differences (model A minus model B, already paired);
    NaN where an item does not belong to a cell. ``den``: per-item weights of the same shape (e.g.
    scored tokens, so a cell's value is a per-token difference); default 1 for every present item.
    Cells are weighted equally; items are resampled jointly across cells. ``clusters`` ([items]
    ids): resample whole clusters instead, for items that are not independent (probe test sequences
    sharing a prompt get the same prediction). Cells with fewer than ``MIN_CELL_ITEMS`` items are
    dropped, and a resample that leaves a cell empty is discarded, so every resample estimates the
    same statistic.
    """
    num, den, present, keep_cells = _prepare(num, den)
    if not keep_cells.any() and (den.sum(1) > 0).any():
        # Every cell is too small to bootstrap: report the point estimate alone (no interval, so no verdict).
        ok = den.sum(1) > 0
        est = float(np.mean(num[ok].sum(1) / den[ok].sum(1)))
        return PairedDifference(est, float("nan"), float("nan"), float("nan"), int(present[ok].any(0).sum()), int(ok.sum()))
    num, den, present = num[keep_cells], den[keep_cells], present[keep_cells]
    used = present.any(0)
    num, den = num[:, used], den[:, used]
    C, N = num.shape
    if C == 0 or N == 0:
        return PairedDifference(float("nan"), float("nan"), float("nan"), float("nan"), 0, 0)
    est = float(np.mean(num.sum(1) / den.sum(1)))
    stats = resampled_ratios(num, den, n_boot, seed, clusters=None if clusters is None else np.asarray(clusters)[used]).mean(1)  # NaN: a cell came out empty
    lo, hi = percentile_interval(stats)
    K = len(np.unique(np.asarray(clusters)[used])) if clusters is not None else N
    return PairedDifference(est, lo, hi, float(np.nanstd(stats, ddof=1)), int(K), int(C))


def seeded_difference(a_runs: Sequence[np.ndarray], b_runs: Sequence[np.ndarray] | None = None, den: np.ndarray | None = None, *,
                      clusters: np.ndarray | None = None, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> PairedDifference:
    """A difference over items and training seeds.

    Between two arms: ``a_runs`` / ``b_runs`` hold each seed's per-item scores ([cells, items], NaN outside a
    cell; the same items in every run); the statistic is arm A's seed mean minus arm B's. Within one
    model: ``b_runs`` is None and ``a_runs`` holds each seed's per-item paired differences. The item part
    of the SE is the bootstrap of the seed-averaged difference; the seed part is the (pooled) variance of
    the per-seed statistics across seeds on those items, divided by the seeds per arm. With one seed per
    arm the result is the plain item bootstrap, marked so that a between-model verdict reads "one run".
    """
    a = [np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in a_runs]
    b = None if b_runs is None else [np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in b_runs]
    if not a or (b is not None and not b):
        raise ValueError("every arm needs at least one run")
    mean_a = np.mean(a, axis=0)
    diff = mean_a if b is None else mean_a - np.mean(b, axis=0)
    item = paired_difference(diff, den, clusters=clusters, n_boot=n_boot, seed=seed)
    arms = [a] if b is None else [a, b]
    stats = [np.array([point_estimate(x, den) for x in arm]) for arm in arms]
    seeds = tuple(len(arm) for arm in arms)
    sds = tuple(float(s.std(ddof=1)) if len(s) > 1 else float("nan") for s in stats)
    between = b is not None
    if not np.isfinite(item.estimate) or not np.isfinite(item.se):
        return PairedDifference(item.estimate, item.ci_low, item.ci_high, item.se, item.items, item.cells, item.se, seeds, sds, float("inf"), between)
    df_seed = sum(n - 1 for n in seeds)
    if df_seed == 0 or (between and min(seeds) < MIN_SEEDS):
        # No spread across runs to measure (or only in one arm): the item interval, flagged by ``one_run``.
        return PairedDifference(item.estimate, item.ci_low, item.ci_high, item.se, item.items, item.cells, item.se, seeds, sds, float("inf"), between)
    pooled = sum((n - 1) * s**2 for n, s in zip(seeds, sds) if n > 1) / df_seed
    v_seed = pooled * sum(1.0 / n for n in seeds)
    v_item = item.se**2
    se = math.sqrt(v_seed + v_item)
    df = float("inf") if v_seed == 0 else (v_seed + v_item) ** 2 / (v_seed**2 / df_seed)
    half = t_quantile(1 - (1 - CONFIDENCE) / 2, df) * se
    return PairedDifference(item.estimate, item.estimate - half, item.estimate + half, se, item.items, item.cells, item.se, seeds, sds, df, between)


@dataclass
class Verdict:
    """One finding's verdict with everything a reader needs to check it."""

    finding: str
    verdict: str
    test: str  # "superiority" or "non-inferiority"
    threshold: float  # the smallest effect of interest (superiority) or the margin (non-inferiority), in the statistic's units
    units: str
    reason: str
    difference: PairedDifference | None = None
    cells: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # where the smallest effect of interest / margin comes from

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def has_interval(self) -> bool:
        return self.difference is not None and self.difference.has_interval

    def to_dict(self) -> dict[str, Any]:
        return {k: (getattr(self, k).to_dict() if k == "difference" and self.difference is not None else getattr(self, k))
                for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Verdict":
        diff = d.get("difference")
        return cls(**{**d, "difference": None if not diff else PairedDifference.from_dict(diff)})

    def summary(self) -> str:
        d = self.difference
        if d is None or not np.isfinite(d.estimate):
            return self.reason
        kind = "SESOI" if self.test == "superiority" else "margin"
        ci = "" if not np.isfinite(d.ci_low) else f"{d.ci()}; "
        return (f"{d.estimate:+.4f} {self.units} ({ci}{d.items} paired items"
                f"{'' if d.cells <= 1 else ' in ' + str(d.cells) + ' cells'}; {seed_note(d)}; MDE {d.mde:.4f}; "
                f"{kind} {self.threshold:.4f}) — {self.reason}")


def seed_note(d: PairedDifference) -> str:
    """'seeds 2 vs 2, seed SD 0.0031 / 0.0042, item SE 0.0008' (the two noise sources side by side)."""
    sd = " / ".join("—" if s is None or not np.isfinite(s) else f"{s:.4f}" for s in d.seed_sd)
    return f"seeds {' vs '.join(str(n) for n in d.seeds)}, seed SD {sd}, item SE {d.item_se:.4f}"


def _gate(diff: PairedDifference | None, informative: bool, why: str) -> tuple[str, str] | None:
    if not informative or diff is None:
        return "inconclusive", why
    if diff.items < MIN_ITEMS:
        return "inconclusive", f"only {diff.items} paired items (need {MIN_ITEMS})"
    if not np.isfinite(diff.estimate) or not np.isfinite(diff.ci_low):
        return "inconclusive", f"no interval: every cell has fewer than {MIN_CELL_ITEMS} items"
    if diff.one_run:
        return "inconclusive", f"one run: a between-model difference needs >= {MIN_SEEDS} seeds per arm (seeds {' vs '.join(map(str, diff.seeds))})"
    return None


def superiority(finding: str, diff: PairedDifference | None, effect: float, units: str, *, source: str = "", informative: bool = True,
                why_uninformative: str = "no informative data", baseline_signal: bool = True, why_no_signal: str = "the baseline has no signal",
                cells: Sequence[str] = (), **details: Any) -> Verdict:
    """``diff`` is oriented so that positive = the paper's direction; ``effect`` is the smallest effect of interest (> 0).

    ``baseline_signal=False`` (e.g. the reference model's probe is at chance, so it has nothing to lose)
    turns a would-be "not reproduced" into "inconclusive": the test had no room to show the effect.
    """
    if effect <= 0:
        raise ValueError("the smallest effect of interest must be positive")
    v = _gate(diff, informative, why_uninformative)
    if v is None:
        assert diff is not None  # the gate lets no missing difference through
        v = _superiority_word(diff, effect)
    if v[0] == "not reproduced" and not baseline_signal:
        v = ("inconclusive", why_no_signal)
    return Verdict(finding, v[0], "superiority", effect, units, v[1], diff, list(cells), details, source)


def _superiority_word(diff: PairedDifference, effect: float) -> tuple[str, str]:
    lo, hi = diff.ci_low, diff.ci_high
    if -effect < lo and hi < effect:
        sig = " (significant, but negligible)" if lo > 0 or hi < 0 else ""
        return "not reproduced", f"negligible: the whole interval lies within ±{effect:.4f}{sig}"
    if lo > 0:
        return "reproduced", "significant in the paper's direction, and an effect of interest is not excluded"
    if hi < 0:
        return "contradicted", "significant in the opposite direction, beyond the smallest effect of interest"
    if hi < effect:
        return "not reproduced", "the interval excludes an effect of interest in the paper's direction"
    if diff.mde > effect:
        return "inconclusive", (f"underpowered: the detectable effect {diff.mde:.4f} exceeds the smallest effect of interest {effect:.4f}; "
                                f"{diff.power_plan(effect)}")
    return "inconclusive", "the interval covers both 0 and the smallest effect of interest"


def non_inferiority(finding: str, harm: PairedDifference | None, margin: float, units: str, *, source: str = "", informative: bool = True,
                    why_uninformative: str = "no informative data", cells: Sequence[str] = (), **details: Any) -> Verdict:
    """``harm`` is oriented so that positive = the treatment is worse; the claim is 'worse by less than ``margin``'."""
    if margin <= 0:
        raise ValueError("the margin must be positive")
    gated = _gate(harm, informative, why_uninformative)
    if gated or harm is None:
        word, reason = gated or ("inconclusive", why_uninformative)
    elif harm.ci_high < margin:
        word, reason = "reproduced", "the whole interval lies within the margin"
    elif harm.ci_low > margin:
        word, reason = "contradicted", "worse by more than the margin (whole interval beyond it)"
    elif harm.ci_low > 0:
        word, reason = "not reproduced", "significantly worse, and the interval reaches past the margin"
    else:
        word, reason = "inconclusive", "the interval covers both 0 and the margin"
    return Verdict(finding, word, "non-inferiority", margin, units, reason, harm, list(cells), details, source)
