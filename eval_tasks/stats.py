"""Verdicts for every study: paired differences, bootstrap intervals, detectable effects, four words.

Two models scored on the same items (sequences, questions, articles) are compared item by item: the
statistic is a difference of the two models' scores over shared items, and its 95% interval comes
from a bootstrap that resamples *items*, so both models move together (the pairing) and an item
that contributes to several cells (a sequence probed at L = 5 and at L = 20) is resampled once.

A verdict is one of four words, decided by rules fixed here before any study is run:

- **reproduced**: the interval lies on the paper's side (superiority: the whole interval above 0;
  non-inferiority: the whole interval below the margin);
- **contradicted**: the interval lies on the other side (superiority: below 0; non-inferiority: the
  whole interval beyond the margin);
- **not reproduced**: the test was powered and shows no effect of the paper's size (superiority:
  the interval excludes the paper's effect while covering 0; non-inferiority: a significant harm whose
  interval still reaches past the margin);
- **inconclusive**: too few informative items, a baseline without signal, or a minimum detectable
  effect larger than the effect the paper claims.

The minimum detectable effect (MDE) is the true difference this test would find significant with
80% power at a two-sided 5% level: (z_0.975 + z_0.80) * SE = 2.80 * SE, with SE the bootstrap
standard deviation of the statistic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

VERDICTS = ("reproduced", "contradicted", "not reproduced", "inconclusive")
# Fixed before any study run (2026-11-25) and never tuned toward a result.
CONFIDENCE = 0.95
Z_HALF_ALPHA = 1.959964  # two-sided 5%
Z_POWER = 0.841621  # 80% power
MDE_FACTOR = Z_HALF_ALPHA + Z_POWER
N_BOOTSTRAP = 2000
MIN_ITEMS = 30  # fewer shared items (or clusters) than this: no verdict
MIN_CELL_ITEMS = 20  # a cell with fewer items than this is left out of the statistic


@dataclass
class PairedDifference:
    """A paired statistic (mean over cells of each cell's ratio of summed numerators to summed denominators) and its bootstrap."""

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    items: int
    cells: int

    def negated(self) -> "PairedDifference":
        """The same comparison the other way round (B minus A): the interval flips with the estimate."""
        return PairedDifference(-self.estimate, -self.ci_high, -self.ci_low, self.se, self.items, self.cells)

    @property
    def mde(self) -> float:
        return float(MDE_FACTOR * self.se)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"mde": self.mde}


def paired_difference(num: np.ndarray, den: np.ndarray | None = None, *, clusters: np.ndarray | None = None, n_boot: int = N_BOOTSTRAP,
                      seed: int = 0) -> PairedDifference:
    """Bootstrap over items of ``mean_c [sum_i num[c, i] / sum_i den[c, i]]``.

    ``num``: [cells, items] (or [items]) per-item differences (model A minus model B, already paired);
    NaN where an item does not belong to a cell. ``den``: per-item weights of the same shape (e.g.
    scored tokens, so a cell's value is a per-token difference); default 1 for every present item.
    Cells are weighted equally; items are resampled jointly across cells. ``clusters`` ([items]
    ids): resample whole clusters instead, for items that are not independent (probe test sequences
    sharing a prompt get the same prediction). Cells with fewer than ``MIN_CELL_ITEMS`` items are
    dropped, and a resample that leaves a cell empty is discarded, so every resample estimates the
    same statistic.
    """
    num = np.atleast_2d(np.asarray(num, dtype=np.float64))
    present = np.isfinite(num)
    den = present.astype(np.float64) if den is None else np.where(present, np.atleast_2d(np.asarray(den, dtype=np.float64)), 0.0)
    if not np.all(np.isfinite(den)):
        raise ValueError("weights must be finite where differences are present")
    num = np.where(present, num, 0.0)
    keep_cells = (present.sum(1) >= MIN_CELL_ITEMS) & (den.sum(1) > 0)
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
    if clusters is None:
        cl = np.arange(N)
    else:
        cl = np.unique(np.asarray(clusters)[used], return_inverse=True)[1]
    K = int(cl.max()) + 1
    # Sum items into clusters once; resampling clusters then needs [b, K] weights only.
    cnum, cden = np.zeros((C, K)), np.zeros((C, K))
    np.add.at(cnum.T, cl, num.T)
    np.add.at(cden.T, cl, den.T)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    chunk = max(1, min(n_boot, 4_000_000 // max(K, 1)))
    for s in range(0, n_boot, chunk):
        b = min(chunk, n_boot - s)
        w = rng.multinomial(K, np.full(K, 1.0 / K), size=b).astype(np.float64)  # [b, K] counts of each resample
        d = w @ cden.T
        with np.errstate(invalid="ignore", divide="ignore"):
            per_cell = (w @ cnum.T) / np.where(d > 0, d, np.nan)
        stats[s : s + b] = per_cell.mean(1)  # NaN if any cell came out empty
    tail = (1 - CONFIDENCE) / 2
    lo, hi = np.nanquantile(stats, [tail, 1 - tail])
    return PairedDifference(est, float(lo), float(hi), float(np.nanstd(stats, ddof=1)), int(K), int(C))


@dataclass
class Verdict:
    """One finding's verdict with everything a reader needs to check it."""

    finding: str
    verdict: str
    test: str  # "superiority" or "non-inferiority"
    threshold: float  # the paper's effect (superiority) or the margin (non-inferiority), in the statistic's units
    units: str
    reason: str
    difference: dict[str, Any] | None = None
    cells: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        d = self.difference
        if not d or not np.isfinite(d["estimate"]):
            return self.reason
        kind = "effect" if self.test == "superiority" else "margin"
        return (f"{d['estimate']:+.4f} {self.units} (95% CI {d['ci_low']:+.4f} to {d['ci_high']:+.4f}; {d['items']} paired items"
                f"{'' if d['cells'] <= 1 else ' in ' + str(d['cells']) + ' cells'}; MDE {d['mde']:.4f}; "
                f"{kind} {self.threshold:.4f}) — {self.reason}")


def superiority(finding: str, diff: PairedDifference, effect: float, units: str, *, informative: bool = True,
                why_uninformative: str = "no informative data", baseline_signal: bool = True, why_no_signal: str = "the baseline has no signal",
                cells: Sequence[str] = (), **details: Any) -> Verdict:
    """``diff`` is oriented so that positive = the paper's direction; ``effect`` is the size the paper reports (> 0).

    ``baseline_signal=False`` (e.g. the reference model's probe is at chance, so it has nothing to lose)
    turns a would-be "not reproduced" into "inconclusive": the test had no room to show the effect.
    """
    if effect <= 0:
        raise ValueError("the paper's effect must be positive")
    v = _superiority_word(diff, effect, informative, why_uninformative)
    if v[0] == "not reproduced" and not baseline_signal:
        v = ("inconclusive", why_no_signal)
    return Verdict(finding, v[0], "superiority", effect, units, v[1], None if diff is None else diff.to_dict(), list(cells), details)


def _superiority_word(diff: PairedDifference | None, effect: float, informative: bool, why: str) -> tuple[str, str]:
    if not informative or diff is None:
        return "inconclusive", why
    if diff.items < MIN_ITEMS or not np.isfinite(diff.estimate):
        return "inconclusive", f"only {diff.items} paired items (need {MIN_ITEMS})"
    if diff.ci_low > 0:
        if diff.ci_high < effect:
            return "reproduced", "significant in the paper's direction, but smaller than the paper's effect (whole interval below it)"
        return "reproduced", "significant in the paper's direction"
    if diff.ci_high < 0:
        return "contradicted", "significant in the opposite direction"
    if diff.mde > effect:
        return "inconclusive", f"underpowered: the detectable effect {diff.mde:.4f} exceeds the paper's {effect:.4f}"
    if diff.ci_high < effect:
        return "not reproduced", "powered, and the interval excludes an effect of the paper's size"
    return "inconclusive", "the interval covers both 0 and the paper's effect"


def non_inferiority(finding: str, harm: PairedDifference, margin: float, units: str, *, informative: bool = True,
                    why_uninformative: str = "no informative data", cells: Sequence[str] = (), **details: Any) -> Verdict:
    """``harm`` is oriented so that positive = the treatment is worse; the claim is 'worse by less than ``margin``'."""
    if margin <= 0:
        raise ValueError("the margin must be positive")
    if not informative or harm is None:
        word, reason = "inconclusive", why_uninformative
    elif harm.items < MIN_ITEMS or not np.isfinite(harm.estimate):
        word, reason = "inconclusive", f"only {harm.items} paired items (need {MIN_ITEMS})"
    elif harm.ci_high < margin:
        word, reason = "reproduced", "the whole interval lies within the margin"
    elif harm.ci_low > margin:
        word, reason = "contradicted", "worse by more than the margin (whole interval beyond it)"
    elif harm.ci_low > 0:
        word, reason = "not reproduced", "significantly worse, and the interval reaches past the margin"
    else:
        word, reason = "inconclusive", "the interval covers both 0 and the margin"
    return Verdict(finding, word, "non-inferiority", margin, units, reason, None if harm is None else harm.to_dict(), list(cells), details)


def forest_plot(ax, rows: Sequence[tuple[str, PairedDifference | dict]], *, threshold: float | None = None, threshold_label: str = "",
                xlabel: str = "difference") -> None:
    """Paired differences with their 95% intervals, one row each, with 0 and the paper's effect/margin marked."""
    labels, est, lo, hi = [], [], [], []
    for name, d in rows:
        d = d.to_dict() if isinstance(d, PairedDifference) else d
        if d is None or not np.isfinite(d["estimate"]):
            continue
        labels.append(name)
        est.append(d["estimate"])
        lo.append(d["estimate"] - d["ci_low"])
        hi.append(d["ci_high"] - d["estimate"])
    y = np.arange(len(labels))[::-1]
    ax.errorbar(est, y, xerr=[lo, hi], fmt="o", color="C0", capsize=3, ms=4)
    ax.axvline(0, color="k", lw=1)
    if threshold is not None:
        ax.axvline(threshold, color="C3", ls="--", lw=1, label=threshold_label)
        ax.legend(fontsize=7, loc="best")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
