"""The schema of the localization study's ``results.json``.

``run_study`` builds a ``LocalizationStudyResults`` stage by stage; ``write_report`` adds the regime, the claims and the
figures and saves it (per-article and per-question scores stay in each run's ``eval_results.json``); the README paragraph
and ``compare-runs`` load it. The JSON layout is the one earlier runs wrote, so the committed reference loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from metacond.eval_tasks.results import ItemScore, RegionalRow, SummaryRow
from metacond.eval_tasks.stats import PairedDifference, Verdict
from metacond.modeling.summary import known_fields, parsed_or_refused, read_results, strip_items, write_json_atomically

# Per-item scores and curves, kept beside each run and left out of results.json.
ITEM_KEYS = ("items", "before_items", "after_items", "loss_curve")


class RunRecord:
    """A typed view of one run's entry in results.json: its place in the grid, its training facts, its evaluation."""

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        self.name, self.raw = name, raw

    @property
    def family(self) -> str:
        return self.raw["run"]["family"]

    @property
    def template(self) -> str:
        return self.raw["run"]["template"]

    @property
    def experiment(self) -> str:
        return self.raw["run"]["experiment"]

    @property
    def seed(self) -> int:
        return int(self.raw["run"].get("seed", 0))

    @property
    def arm(self) -> str:
        return self.raw["run"].get("arm") or self.name

    @property
    def training(self) -> dict[str, Any]:
        """The training facts the study recorded (status, and for a trained run its tokens, losses and curve)."""
        return self.raw.get("training") or {}

    @property
    def trained(self) -> bool:
        return self.training.get("status", "trained") == "trained"

    @property
    def evaluated(self) -> bool:
        return bool(self.raw.get("eval"))

    @cached_property
    def regional(self) -> list[RegionalRow]:
        return [RegionalRow(**r) for r in (self.raw.get("eval") or {}).get("regional", [])]

    @cached_property
    def items(self) -> list[ItemScore]:
        return [ItemScore(**i) for i in (self.raw.get("eval") or {}).get("items", [])]


class McqRecord:
    """A typed view of one base model's MCQ entry: accuracy before and after instruction tuning, per question."""

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        self.name, self.raw = name, raw

    @property
    def arm(self) -> str:
        return self.raw.get("arm") or self.name

    @property
    def seed(self) -> int:
        return int(self.raw.get("seed", 0))

    @property
    def metadata_prefix(self) -> bool:
        return bool(self.raw["sft"]["metadata_prefix"])

    @property
    def condition(self) -> str:
        """The metadata condition its questions are asked under: its template's, or none for a model trained without."""
        return self.raw.get("condition", "full") if self.metadata_prefix else "none"

    def summary(self, after: bool = False) -> list[SummaryRow]:
        return [SummaryRow(**r) for r in self.raw["after" if after else "before"]]

    def items(self, after: bool = False) -> list[ItemScore]:
        return [ItemScore(**i) for i in self.raw.get("after_items" if after else "before_items") or []]


@dataclass
class LocalizationRegime:
    """The gates every claim reads: is the no-metadata model a language model (below the n-gram line on the same
    articles), what the metadata buys a counting model, and do the MCQ base models know anything."""

    ngram_bits_per_byte: dict[str, float]
    model_bits_per_byte: float | None
    model_seed_sd: float | None
    gate_line: str
    language_model: bool
    # Written only when measured (None: left out of results.json); declared here to keep the file's key order.
    tokens_to_regime: list[int | None] | None = field(default=None, kw_only=True)  # per seed: input tokens where the training curve crosses the line
    curve_end: list[dict[str, float]] | None = field(default=None, kw_only=True)  # per seed: the last training loss in test bits/byte and its tokens
    why: str
    mcq_base_accuracy: float | None
    mcq_strongest_baseline: float
    mcq_knows: bool
    arms: list[dict[str, Any]] | None = field(default=None, kw_only=True)  # the arms' bits/byte beside the lines (mean and SD over seeds)
    ngram_gains: dict[str, PairedDifference] | None = field(default=None, kw_only=True)  # field -> what that metadata buys the n-gram

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if not (f.kw_only and getattr(self, f.name) is None)}
        if self.ngram_gains is not None:
            d["ngram_gains"] = {k: g.to_dict() for k, g in self.ngram_gains.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LocalizationRegime":
        gains = d.get("ngram_gains")
        return cls(**{**d, "ngram_gains": None if gains is None else {k: PairedDifference.from_dict(g) for k, g in gains.items()}})


@dataclass
class LocalizationStudyResults:
    FILE = "results.json"

    preset: str
    input: str | None
    plan: dict[str, Any]  # plan.json: the runs, their token budgets, the preset's settings
    runs: dict[str, dict[str, Any]]  # run name -> {"run": grid.Run, "training": facts, "eval": perplexity rows and items}
    meta_template: str = "full"  # absent from the first results
    eval_body_bytes: int | None = None
    workers: int | None = None
    ngram: dict[str, Any] = field(default_factory=dict)  # the n-gram lines on the test articles (ngram.py)
    mcq: dict[str, Any] = field(default_factory=dict)  # questions, answer-only baselines, each base model before and after tuning
    data: dict[str, Any] = field(default_factory=dict)  # the builds' counts
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_seconds_this_invocation: dict[str, float] = field(default_factory=dict)
    wall_time_seconds_this_invocation: float = 0.0
    regime: LocalizationRegime | None = None
    claims: list[Verdict] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    _views: dict[str, RunRecord] = field(default_factory=dict, init=False, repr=False, compare=False)

    def records(self) -> list[RunRecord]:
        return [self._record(n) for n in self.runs]

    def record(self, name: str) -> RunRecord | None:
        return self._record(name) if name in self.runs else None

    def _record(self, name: str) -> RunRecord:
        # One view per run while its entry is the same object, so its rows and items are parsed once per report (reports
        # read the entries after every stage has written them).
        view = self._views.get(name)
        if view is None or view.raw is not self.runs[name]:
            view = self._views[name] = RunRecord(name, self.runs[name])
        return view

    def mcq_models(self) -> list[McqRecord]:
        return [McqRecord(n, m) for n, m in (self.mcq.get("models") or {}).items()]

    @property
    def size(self) -> str:
        """The model size the claims compare (the preset's largest)."""
        return self.plan["preset_config"]["sizes"][-1]

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        d["regime"] = None if self.regime is None else self.regime.to_dict()
        d["claims"] = [v.to_dict() for v in self.claims]
        if self.workers is None:
            del d["workers"]
        return d

    def save(self, out_dir: str | Path) -> Path:
        p = Path(out_dir) / self.FILE
        write_json_atomically(p, strip_items(self.to_dict(), ITEM_KEYS))
        return p

    @classmethod
    def load(cls, path: str | Path) -> "LocalizationStudyResults":
        """From results.json or the study directory holding it."""
        p, d = read_results(path, cls.FILE, "localization study results", "run metacond localization-study first", required=("runs", "plan"))
        d = known_fields(cls, d)
        return parsed_or_refused(lambda: cls(**d | {"regime": None if not d.get("regime") else LocalizationRegime.from_dict(d["regime"]),
                                                     "claims": [Verdict.from_dict(v) for v in d.get("claims") or []]}), p, "localization study results")
