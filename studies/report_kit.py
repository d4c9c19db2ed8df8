"""One kit for both study reports: findings as declarative entries, the verdict table, the forest figure, the README
paragraph, the methods text and the item stripping.

A finding is data plus a small function (lm-eval's task registry is the model): the entry holds the paper's claim in
words, its test, its smallest effect of interest (or margin) and the source of that number; the function next to it
measures the paired difference from a study's results and says whether the data can test the claim at all. Adding a
finding to a report is one ``@FINDINGS.finding(...)`` entry above its function; the kit turns every entry into
verdicts (``metacond.eval_tasks.stats``) and every verdict into table rows, figure panels and README lines.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, TypeVar

import numpy as np

from metacond.eval_tasks.stats import PairedDifference, Verdict, non_inferiority, seed_note, superiority

Test = Literal["superiority", "non-inferiority"]
R = TypeVar("R")


@dataclass
class Evidence:
    """What a finding's function measured: the paired difference (oriented so that positive = the paper's direction
    for superiority, positive = worse for non-inferiority) and whether the data can test the claim."""

    difference: PairedDifference | None
    fill: dict[str, Any] = field(default_factory=dict)  # the claim's {fields}, e.g. {"depth": 5}
    threshold: float | None = None  # a threshold measured on the data (a share of the Bayes gain); else the entry's
    informative: bool = True
    why_uninformative: str = "no informative data"
    baseline_signal: bool = True  # superiority only: a baseline with nothing to lose cannot read "not reproduced"
    why_no_signal: str = "the baseline has no signal"
    cells: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    order: float = float("inf")  # rows sort by (order, entry): findings measured per D_M group by D_M


@dataclass(frozen=True)
class Finding:
    """One claim of the paper, its test and its smallest effect of interest with the source of that number."""

    claim: str
    test: Test
    units: str
    source: str
    threshold: float | None  # None: every evidence brings its own (measured on the data)
    measure: Callable[[Any], Iterable[Evidence]]

    def judge(self, e: Evidence) -> Verdict:
        threshold = self.threshold if e.threshold is None else e.threshold
        if threshold is None:
            raise ValueError(f"{self.measure.__name__}: no threshold in the entry or the evidence")
        text = self.claim.format(**e.fill)
        if self.test == "superiority":
            return superiority(text, e.difference, threshold, self.units, source=self.source, informative=e.informative,
                               why_uninformative=e.why_uninformative, baseline_signal=e.baseline_signal, why_no_signal=e.why_no_signal,
                               cells=e.cells, **e.details)
        return non_inferiority(text, e.difference, threshold, self.units, source=self.source, informative=e.informative,
                               why_uninformative=e.why_uninformative, cells=e.cells, **e.details)


class Findings:
    """A study's findings, in the order they were declared."""

    def __init__(self) -> None:
        self.entries: list[Finding] = []
        self._memo: dict[tuple, Any] | None = None  # measurements shared by several findings, during one judge()

    def shared(self, fn: Callable[..., R]) -> Callable[..., R]:
        """A measurement several findings use (``fn(results, *args)``, hashable args): computed once per ``judge`` call
        (outside one, every call computes)."""

        def once(results: Any, *args: Any) -> R:
            if self._memo is None:
                return fn(results, *args)
            key = (fn.__name__, *args)
            if key not in self._memo:
                self._memo[key] = fn(results, *args)
            return self._memo[key]

        once.__name__ = fn.__name__
        return once

    def finding(self, claim: str, *, test: Test, units: str, source: str, threshold: float | None = None):
        """Declare a finding above the function that measures it: ``fn(results) -> Evidence | Iterable[Evidence] | None``."""

        def register(fn: Callable[[Any], Evidence | Iterable[Evidence] | None]) -> Callable[[Any], Evidence | Iterable[Evidence] | None]:
            def measure(results: Any) -> list[Evidence]:
                got = fn(results)
                return [] if got is None else [got] if isinstance(got, Evidence) else list(got)

            measure.__name__ = fn.__name__
            self.entries.append(Finding(claim, test, units, source, threshold, measure))
            return fn

        return register

    def judge(self, results: Any) -> list[Verdict]:
        self._memo = {}
        try:
            rows = [((e.order, k, j), f.judge(e)) for k, f in enumerate(self.entries) for j, e in enumerate(f.measure(results))]
        finally:
            self._memo = None
        return [v for _, v in sorted(rows, key=lambda r: r[0])]


# ---------------------------------------------------------------------- tables and text
VERDICT_COLUMNS = ["| verdict | finding | test | difference (95% CI) | seeds, seed SD, item SE | MDE | SESOI / margin | cells | why |",
                   "|---|---|---|---|---|---|---|---|---|"]


def verdict_table(verdicts: list[Verdict]) -> list[str]:
    """The report's findings table: one row per verdict, the interval with its noise sources and the thresholds."""
    lines = list(VERDICT_COLUMNS)
    for v in verdicts:
        # No cells named: the whole item set when something was measured, nothing when nothing was.
        d, cells = v.difference, ", ".join(v.cells) or ("all" if v.has_interval else "—")
        if d is not None and v.has_interval:
            lines.append(f"| **{v.verdict}** | {v.finding} | {v.test} | {d.interval()}, n={d.items} {v.units} | {seed_note(d)} | {d.mde:.4f} | "
                         f"{v.threshold:.4f} | {cells} | {v.reason} |")
        else:
            lines.append(f"| **{v.verdict}** | {v.finding} | {v.test} | — | — | — | {v.threshold:.4f} | {cells} | {v.reason} |")
    return lines


def verdict_text(title: str, verdicts: list[Verdict]) -> list[str]:
    """verdicts.txt and the console: the word, the finding, then its numbers in one line."""
    return [title] + [f"  {v.verdict.upper():<15} {v.finding}\n  {'':<15} {v.summary()}" for v in verdicts]


def readme_table(verdicts: list[Verdict]) -> list[str]:
    """The README's verdict table of a reference run (generated from its results.json)."""
    lines = ["| verdict | finding | difference (95% CI) | seeds, seed SD, item SE | MDE | SESOI / margin | why |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        d = v.difference
        if d is not None and v.has_interval:
            lines.append(f"| **{v.verdict}** | {v.finding} | {d.interval()} {v.units} | {seed_note(d)} | {d.mde:.4f} | {v.threshold:.4f} | {v.reason} |")
        else:
            lines.append(f"| **{v.verdict}** | {v.finding} | — | — | — | {v.threshold:.4f} | {v.reason} |")
    return lines


def sources(verdicts: list[Verdict], note: Callable[[Verdict], str] = lambda v: "") -> list[str]:
    """Where each threshold comes from (``note`` adds a finding's own remark, e.g. what a counting model gains)."""
    return [f"- {v.finding}: {v.threshold:.4f} {v.units} — {v.source}{note(v)}" for v in verdicts]


def methods(pairing: str, thresholds_module: str, commit: str) -> str:
    """How every verdict is reached, once for both studies. ``pairing``: what the two models share ("the same items
    (sequences, ...)"); ``thresholds_module``: where the thresholds are fixed; ``commit``: where they were set."""
    return (f"Every difference pairs two models on {pairing}. Its interval adds the item spread (bootstrap over items of the seed-averaged "
            "difference) and the seed spread (each arm's statistic across its training runs), a t interval with the seeds' degrees of freedom "
            "(`eval_tasks/stats.py`). A between-model claim with one run per arm reads inconclusive. Superiority: reproduced when the interval "
            "excludes 0 in the paper's direction and is not wholly inside ±SESOI (the smallest effect of interest); not reproduced when it is "
            "wholly inside ±SESOI or excludes the SESOI; non-inferiority: reproduced when the whole interval lies within the margin. MDE: the "
            f"difference this test detects with 80% power. Thresholds, their sources and cell rules are fixed in `{thresholds_module}`, set in "
            f"commit {commit} before this run.")


# ---------------------------------------------------------------------- figure
def forest_plot(ax, rows: list[tuple[str, PairedDifference]], *, threshold: float | None = None, threshold_label: str = "",
                xlabel: str = "difference", equivalence: bool = False) -> None:
    """Paired differences with their 95% intervals, one row each, with 0 and the SESOI/margin marked
    (``equivalence``: the negligible band ±SESOI is shaded)."""
    shown = [(name, d) for name, d in rows if np.isfinite(d.estimate)]
    y = np.arange(len(shown))[::-1]
    ax.errorbar([d.estimate for _, d in shown], y, xerr=[[d.estimate - d.ci_low for _, d in shown], [d.ci_high - d.estimate for _, d in shown]],
                fmt="o", color="C0", capsize=3, ms=4)
    ax.axvline(0, color="k", lw=1)
    if threshold is not None:
        ax.axvline(threshold, color="C3", ls="--", lw=1, label=threshold_label)
        if equivalence:
            ax.axvspan(-threshold, threshold, color="0.85", alpha=0.5, lw=0, label="negligible (±SESOI)")
        ax.legend(fontsize=7, loc="best")
    ax.set_yticks(y, [name for name, _ in shown], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")


def verdict_figure(verdicts: list[Verdict], path: Path, suptitle: str) -> bool:
    """One forest panel per verdict with an interval: the difference, 0 and the threshold (±SESOI shaded). False when
    no verdict has an interval (nothing is drawn)."""
    from metacond.figures import pyplot, save

    vs = [v for v in verdicts if v.difference is not None and np.isfinite(v.difference.estimate)]
    if not vs:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(len(vs), 1, figsize=(9.0, 1.25 * len(vs) + 0.6), dpi=110)
    for ax, v in zip(np.atleast_1d(axes), vs):
        d = v.difference
        assert d is not None
        sup = v.test == "superiority"
        forest_plot(ax, [(v.verdict, d)], threshold=v.threshold, threshold_label="smallest effect of interest" if sup else "margin", xlabel="",
                    equivalence=sup)
        lo, hi = min(0, d.ci_low, -v.threshold if sup else 0), max(0, d.ci_high, v.threshold)
        if np.isfinite(lo) and np.isfinite(hi):
            pad = 0.15 * (hi - lo or 1e-3)
            ax.set_xlim(lo - pad, hi + pad)
        title = f"{v.finding} [{v.units}; {'positive = paper' if sup else 'positive = worse'}; {seed_note(d)}]"
        ax.set_title(textwrap.fill(title, 130), fontsize=7, loc="left")
    save(fig, path, suptitle=suptitle)
    return True
