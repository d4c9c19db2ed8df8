"""Two runs of one study side by side: does the verdict survive a rerun?

A study's verdicts are evidence only if another run of the same command (another machine, another
clone, another thread layout: CPU float sums differ, so trained models differ) gives compatible
answers. This compares two ``results.json`` files of the PCFG or the localization study finding by
finding:

- **intervals overlap**: the two 95% intervals of the difference share a point;
- **words compatible**: the same word, or one definite word against "inconclusive"; two different
  definite words (e.g. "not reproduced" against "reproduced") are a conflict.

It prints a markdown table (what a closing note lists) and exits 1 when any finding conflicts or its
intervals do not overlap, so a rerun check can gate a release.

Example::

    metacond compare-runs runs/pcfg-study-cpu/results.json runs/pcfg-study-cpu-rerun/results.json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from metacond import MetacondError
from metacond.eval_tasks.stats import Verdict

DEFINITE = ("reproduced", "contradicted", "not reproduced")


@dataclass
class CompareArguments:
    run_a: str | None = field(default=None, metadata={"help": "results.json of the first run (or its study directory)."})
    run_b: str | None = field(default=None, metadata={"help": "results.json of the second run (or its study directory)."})
    label_a: str = field(default="run A", metadata={"help": "Column title of the first run."})
    label_b: str = field(default="run B", metadata={"help": "Column title of the second run."})
    output: str | None = field(default=None, metadata={"help": "Also write the table (markdown) to this file."})

    def __post_init__(self) -> None:
        if not self.run_a or not self.run_b:
            raise MetacondError("give two results: metacond compare-runs A/results.json B/results.json")


def load_verdicts(path: str | Path) -> list[Verdict]:
    """The verdict list of a study's results.json (PCFG ``findings``, localization ``claims``)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise MetacondError(f"no such results file: {str(p)!r}")
    r = json.loads(p.read_text())
    verdicts = r.get("findings") or r.get("claims")
    if not verdicts:
        raise MetacondError(f"{p} holds no verdicts (neither 'findings' nor 'claims'): is it a study's results.json?")
    return [Verdict.from_dict(v) for v in verdicts]


def _interval(v: Verdict) -> tuple[float, float] | None:
    d = v.difference
    if d is None or not (np.isfinite(d.ci_low) and np.isfinite(d.ci_high)):
        return None
    return d.ci_low, d.ci_high


def words_compatible(a: str, b: str) -> bool:
    return a == b or "inconclusive" in (a, b)


@dataclass
class Row:
    finding: str
    a: Verdict | None
    b: Verdict | None

    @property
    def overlap(self) -> bool | None:
        ia, ib = (None if v is None else _interval(v) for v in (self.a, self.b))
        if ia is None or ib is None:
            return None
        return ia[0] <= ib[1] and ib[0] <= ia[1]

    @property
    def compatible(self) -> bool:
        return self.a is not None and self.b is not None and words_compatible(self.a.verdict, self.b.verdict)


def compare(a: Sequence[Verdict], b: Sequence[Verdict]) -> list[Row]:
    """Findings matched by name, in run A's order (then any only run B has)."""
    by_b = {v.finding: v for v in b}
    rows = [Row(v.finding, v, by_b.get(v.finding)) for v in a]
    seen = {v.finding for v in a}
    return rows + [Row(v.finding, None, v) for v in b if v.finding not in seen]


def _cell(v: Verdict | None) -> str:
    if v is None:
        return "—"
    d = v.difference
    return v.verdict + ("" if d is None or _interval(v) is None else f" {d.interval()}")


def render(rows: Sequence[Row], label_a: str = "run A", label_b: str = "run B") -> str:
    lines = [f"| finding | {label_a} | {label_b} | intervals overlap | words |", "|---|---|---|---|---|"]
    for r in rows:
        ov = {None: "n/a", True: "yes", False: "**no**"}[r.overlap]
        words = "same" if r.a and r.b and r.a.verdict == r.b.verdict else ("compatible" if r.compatible else "**conflict**")
        lines.append(f"| {r.finding} | {_cell(r.a)} | {_cell(r.b)} | {ov} | {words} |")
    bad = [r for r in rows if not r.compatible or r.overlap is False]
    lines += ["", f"{len(rows)} findings: {sum(r.a is not None and r.b is not None and r.a.verdict == r.b.verdict for r in rows)} same word, "
                  f"{sum(r.compatible for r in rows)} compatible, {sum(r.overlap is True for r in rows)} overlapping intervals; "
                  + ("every finding survives the rerun." if not bad else f"{len(bad)} do not: " + "; ".join(r.finding for r in bad) + ".")]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from metacond.config import parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and not argv[0].startswith("-") and not argv[1].startswith("-"):
        argv = ["--run_a", argv[0], "--run_b", argv[1], *argv[2:]]  # the two results as positional arguments
    (args,) = parse_config([CompareArguments], argv, prog="metacond compare-runs", description=__doc__)
    rows = compare(load_verdicts(args.run_a), load_verdicts(args.run_b))
    table = render(rows, args.label_a, args.label_b)
    print(table, end="")
    if args.output:
        Path(args.output).write_text(table)
    return 0 if all(r.compatible and r.overlap is not False for r in rows) else 1


if __name__ == "__main__":
    from metacond.cli import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond compare-runs"))
