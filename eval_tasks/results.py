"""The schema of ``eval_results.json``, what ``metacond eval`` writes for model cards and studies.

``run_eval`` builds an ``EvalResults`` and saves it; cards and the localization study load it and read attributes, so
every key is spelled here once. Optional fields left at None are not written, so the JSON layout is the one earlier
runs wrote, and those load.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from metacond.modeling.summary import dataclass_from_dict, parsed_or_refused, read_results, write_json_atomically

T = TypeVar("T")


@dataclass
class SummaryRow:
    """One family × condition × continent value (``continent="all"``: lm-eval's own aggregate with its stderr)."""

    family: str
    condition: str
    continent: str
    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    stderr: float | None = None
    n: int | None = field(default=None, kw_only=True)  # questions or articles (last, as the file writes it; files before 2026-12-03 lack it on "all" rows)

    def to_dict(self) -> dict[str, Any]:
        d = _compact(self)
        if self.continent == "all":  # lm-eval's aggregate: its stderr is written even when lm-eval gave none
            d = {k: v for k, v in d.items() if k != "n"} | {"stderr": self.stderr} | ({} if self.n is None else {"n": self.n})
        return d


@dataclass
class RegionalRow:
    """A country's or a continent's value with its bootstrap interval (``intervals.py``)."""

    family: str
    condition: str
    level: str  # country or continent
    key: str
    continent: str
    n: int
    metric: str
    value: float
    ci_low: float
    ci_high: float
    scored_tokens: int | None = None  # token perplexity: the tokens scored

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2 if math.isfinite(self.ci_low) else 0.0


@dataclass
class ItemScore:
    """One article (ppl: nats of its body and its bytes) or one question (accuracy over its option orders), keyed so two
    models evaluated on the same data pair item by item."""

    family: str
    condition: str
    id: str
    continent: str
    country: str
    nll: float | None = None
    bytes: float | None = None
    acc: float | None = None
    orders: int | None = None

    @property
    def bits(self) -> float:
        assert self.nll is not None, "a question has no bits"
        return self.nll / math.log(2)


@dataclass
class RuleRow:
    """A question family's accuracy under one scoring rule (generative: with the unparsed answers' share and both rules)."""

    family: str
    condition: str
    rule: str
    acc: float
    questions: int
    orders: int
    unparsed: float | None = None
    unparsed_rule: str | None = None
    acc_unparsed_wrong: float | None = None
    acc_unparsed_excluded: float | None = None


@dataclass
class BiasRow:
    """Where the gold answer sits and how often the model picks each option slot, under one scoring rule."""

    family: str
    condition: str
    rule: str
    position: str
    n_gold: int
    acc_when_gold_here: float
    choice_rate: float


def summary_value(rows: list[SummaryRow], family: str, condition: str, continent: str = "all") -> float:
    """The value of one family × condition × continent among summary rows (NaN when not measured)."""
    return next((r.value for r in rows if (r.family, r.condition, r.continent) == (family, condition, continent)), float("nan"))


def _compact(row: Any) -> dict[str, Any]:
    """A row as written: optional fields that are None are left out (a row with its own ``to_dict`` decides itself)."""
    optional = {f.name for f in fields(row) if f.default is None}
    return {k: v for k, v in asdict(row).items() if not (k in optional and v is None)}


def _rows(cls: type[T], rows: list[dict[str, Any]], where: Path) -> list[T]:
    return [dataclass_from_dict(cls, r, where) for r in rows]


@dataclass
class EvalResults:
    """Everything one ``metacond eval`` run measured."""

    FILE = "eval_results.json"

    model: str
    conditions: list[str]
    summary: list[SummaryRow]
    regional: list[RegionalRow] = field(default_factory=list)
    items: list[ItemScore] = field(default_factory=list)
    scoring_rules: list[RuleRow] = field(default_factory=list)
    position_bias: list[BiasRow] = field(default_factory=list)
    lm_eval: dict[str, Any] = field(default_factory=dict)  # lm-eval's own results, versions and sample counts per family, as it returns them
    suite: str = "localnews"
    url_style: str | None = None
    unparsed: str = "wrong"
    bootstrap_iters: int = 1000

    @classmethod
    def load(cls, path: str | Path) -> "EvalResults":
        """From ``eval_results.json`` or the folder holding it."""
        p, d = read_results(path, cls.FILE, "evaluation results", "run metacond eval first")
        rows = {"summary": SummaryRow, "regional": RegionalRow, "items": ItemScore, "scoring_rules": RuleRow, "position_bias": BiasRow}
        return parsed_or_refused(lambda: dataclass_from_dict(cls, d | {k: _rows(c, d.get(k) or [], p) for k, c in rows.items()}, p), p,
                                 cls.FILE)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "suite": self.suite, "conditions": self.conditions, "url_style": self.url_style, "unparsed": self.unparsed,
                "lm_eval": self.lm_eval, "summary": [r.to_dict() for r in self.summary], "regional": [_compact(r) for r in self.regional],
                "scoring_rules": [_compact(r) for r in self.scoring_rules], "position_bias": [_compact(r) for r in self.position_bias],
                "bootstrap_iters": self.bootstrap_iters, "items": [_compact(r) for r in self.items]}

    def save(self, out_dir: str | Path) -> Path:
        p = Path(out_dir) / self.FILE
        write_json_atomically(p, self.to_dict())
        return p

    def value(self, family: str, condition: str, continent: str = "all") -> float:
        """A summary value (NaN when the run did not measure it)."""
        return summary_value(self.summary, family, condition, continent)
