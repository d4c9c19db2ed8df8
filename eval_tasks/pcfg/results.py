"""The schema of the PCFG study's ``results.json``: the PCFG evaluations of every run plus the study's verdicts (written by
``metacond.studies.pcfg``, read by model cards, so it lives below both).

``run_study`` builds a ``PcfgStudyResults`` from the per-run evaluations; ``write_report`` adds the verdicts, the regime
and the probe cells and saves it (per-item arrays stay in ``evals/dm*.json``); the README paragraph, ``compare-runs``
and model cards load it. The JSON layout is the one earlier runs wrote, so the committed reference loads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from metacond.eval_tasks.stats import Verdict
from metacond.modeling.summary import known_fields, parsed_or_refused, read_results, strip_items, write_json_atomically

# Per-item arrays, kept in evals/dm*.json and left out of results.json.
ITEM_KEYS = ("items", "probe_correct", "probe_groups")


@dataclass
class LossSummary:
    """Held-out next-token loss of one prefix condition (nats per scored token) beside the Bayes bound."""

    model_loss: float
    bayes_loss: float
    excess_loss: float
    excess_loss_se: float
    excess_early: float | None = None  # over the first EARLY_POSITIONS positions
    excess_by_position: list[float] | None = None


@dataclass
class MetadataGain:
    """What the true metadata prefix buys over the masked one: the model's gain and the Bayes-optimal gain."""

    model: float
    bayes: float
    model_se: float | None = None


@dataclass
class ProbeResult:
    """A linear probe of one level's rule-set index at one prompt length, on prompts it never saw."""

    L: str
    test_accuracy: float
    test_se: float
    last_layer_accuracy: float
    n_train_prompts: int
    index: list[int] | None = None  # the test items (None in results.json, which drops per-item arrays)
    correct: list[int] | None = None
    correct_last_layer: list[int] | None = None


@dataclass
class GrammarRow:
    """CYK acceptance of sampled continuations after prompts of L terminals."""

    L: int
    n: int
    accuracy: float
    se: float
    index: list[int] | None = None
    accepted: list[int] | None = None


class RunEvaluation:
    """A typed view of one training run's evaluation record (``evals/dm*.json``, or its summary in results.json); the
    record itself stays what the evaluations wrote."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @property
    def training_seed(self) -> int | None:
        return self.raw.get("training_seed")

    @cached_property
    def masked(self) -> LossSummary:
        return LossSummary(**known_fields(LossSummary, self.raw["loss"]["masked"]))

    @property
    def metadata(self) -> LossSummary | None:
        d = self.raw["loss"].get("metadata")
        return None if d is None else LossSummary(**known_fields(LossSummary, d))

    @property
    def metadata_gain(self) -> MetadataGain | None:
        d = self.raw["loss"].get("metadata_gain")
        return None if d is None else MetadataGain(**known_fields(MetadataGain, d))

    @cached_property
    def loss_arrays(self) -> dict[str, np.ndarray]:
        """Per-sequence arrays (read once): tokens, model/Bayes nats with and without metadata, early-position nats, nats by position."""
        return {k: np.asarray(v, dtype=float) for k, v in self.raw["loss"]["items"].items()}

    @cached_property
    def probe_levels(self) -> list[list[ProbeResult | None]]:
        """[level][prompt length]: the probe of each cell (None where no probe was fit)."""
        return [[None if c is None else ProbeResult(**known_fields(ProbeResult, c | (c.get("items") or {}))) for c in level]
                for level in self.raw["probing"]["levels"]]

    def grammar(self, with_metadata: bool = False) -> dict[int, GrammarRow] | None:
        """L -> acceptance, after masked prompts or after the true metadata (None: not evaluated)."""
        d = self.raw.get("grammar_metadata" if with_metadata else "grammar_masked")
        if d is None:
            return None
        return {r["L"]: GrammarRow(**known_fields(GrammarRow, r | (r.get("items") or {}))) for r in d.get("rows", []) if r}


@dataclass
class ProbeCell:
    """A probed (level, prompt length) cell with the Bayes accuracy on its test items and whether verdicts use it."""

    level: int
    li: int
    L: str
    bayes: float
    chance: float
    informative: bool
    why_not: str | None
    name: str


@dataclass
class PcfgRegime:
    """Is the D_M = 0 arm in the paper's regime? Means over its runs, each run's value beside them."""

    excess_loss: float
    loss_ok: bool
    probe_share_of_bayes_margin: float | None
    probe_ok: bool
    cells: int
    runs: int = 1  # results before seeds were recorded give one run and no per-run lists
    excess_loss_per_run: list[float] = field(default_factory=list)
    probe_share_per_run: list[float] = field(default_factory=list)


@dataclass
class PcfgStudyResults:
    FILE = "results.json"

    preset: str
    preset_config: dict[str, Any]  # the StudyPreset with the steps, seeds and workers of this invocation
    grammar: str  # Grammar.summary()
    metadata_depths: list[int]
    seed: int
    training_seeds: list[int] = field(default_factory=list, kw_only=True)  # empty in results before seeds: the study seed alone
    bayes: dict[str, Any]  # the Bayes-optimal references on the held-out items (probe answers, chance, unigram loss, ...)
    models: dict[str, list[dict[str, Any]]]  # D_M -> each training run's evaluation (evals/dm*.json)
    training: dict[str, list[dict[str, Any]]]  # D_M -> each training run's facts (parameters, tokens, wall time, ...)
    wall_time_seconds_this_invocation: float = 0.0
    stage_seconds_this_invocation: dict[str, float] = field(default_factory=dict)
    findings: list[Verdict] = field(default_factory=list)
    regime: PcfgRegime | None = None
    probe_cells: list[ProbeCell] = field(default_factory=list)
    grammar_name: str | None = None  # the grammar preset or file name (older results: None)

    def runs(self, depth: int) -> list[RunEvaluation]:
        """Every training run's evaluation of one D_M (one per seed, the same items in each; results before seeds held one)."""
        return self._views[str(depth)]

    @cached_property
    def _views(self) -> dict[str, list[RunEvaluation]]:
        # One view per record for the object's life, so each record's arrays and probe cells are read once.
        return {k: [RunEvaluation(r) for r in (v if isinstance(v, list) else [v])] for k, v in self.models.items()}

    @property
    def seeds(self) -> list[int]:
        return self.training_seeds or [self.seed]

    @property
    def grammar_label(self) -> str:
        """The grammar's name: recorded since 2026-12-03; before, the preset names the grammar it built."""
        return self.grammar_name or str(self.preset_config.get("grammar") or "pcfg")

    @property
    def depths(self) -> list[int]:
        return sorted(int(k) for k in self.models)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["findings"] = [v.to_dict() for v in self.findings]
        d["regime"] = None if self.regime is None else asdict(self.regime)
        d["probe_cells"] = [asdict(c) for c in self.probe_cells]
        if self.grammar_name is None:
            del d["grammar_name"]
        return d

    def save(self, out_dir: str | Path) -> Path:
        """results.json: the summaries; per-item arrays stay in evals/dm*.json."""
        p = Path(out_dir) / self.FILE
        write_json_atomically(p, strip_items(self.to_dict(), ITEM_KEYS))
        return p

    @classmethod
    def load(cls, path: str | Path) -> "PcfgStudyResults":
        """From results.json or the study directory holding it."""
        p, d = read_results(path, cls.FILE, "PCFG study results", "run metacond pcfg-study first", required=("models", "bayes"))
        d = known_fields(cls, d)
        return parsed_or_refused(lambda: cls(**d | {"findings": [Verdict.from_dict(v) for v in d.get("findings") or []],
                                                     "regime": None if not d.get("regime") else PcfgRegime(**d["regime"]),
                                                     "probe_cells": [ProbeCell(**c) for c in d.get("probe_cells") or []]}), p, "PCFG study results")
