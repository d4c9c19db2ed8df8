"""The schema of the PCFG study's ``results.json``: the PCFG evaluations of every run plus the study's verdicts (written by
``metacond.studies.pcfg``, read by model cards, so it lives below both).

``run_study`` builds a ``PcfgStudyResults`` from the per-run evaluations; ``write_report`` adds the verdicts, the regime
and the probe cells and saves it (per-item arrays stay in ``evals/dm*.json``); the README paragraph, ``compare-runs``
and model cards load it. The JSON layout is the one earlier runs wrote, so the committed reference loads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from metacond import MetacondError
from metacond.eval_tasks.stats import Verdict
from metacond.modeling.summary import strip_items, write_json_atomically

# Per-item arrays, kept in evals/dm*.json and left out of results.json.
ITEM_KEYS = ("items", "probe_correct", "probe_groups")


@dataclass
class PcfgRegime:
    """Is the D_M = 0 arm in the paper's regime? Means over its runs, each run's value beside them."""

    excess_loss: float
    loss_ok: bool
    probe_share_of_bayes_margin: float | None
    probe_ok: bool
    cells: int
    runs: int
    excess_loss_per_run: list[float]
    probe_share_per_run: list[float]


@dataclass
class PcfgStudyResults:
    FILE = "results.json"

    preset: str
    preset_config: dict[str, Any]  # the StudyPreset with the steps, seeds and workers of this invocation
    grammar: str  # Grammar.summary()
    metadata_depths: list[int]
    seed: int
    training_seeds: list[int]
    bayes: dict[str, Any]  # the Bayes-optimal references on the held-out items (probe answers, chance, unigram loss, ...)
    models: dict[str, list[dict[str, Any]]]  # D_M -> each training run's evaluation (evals/dm*.json)
    training: dict[str, list[dict[str, Any]]]  # D_M -> each training run's facts (parameters, tokens, wall time, ...)
    wall_time_seconds_this_invocation: float = 0.0
    stage_seconds_this_invocation: dict[str, float] = field(default_factory=dict)
    findings: list[Verdict] = field(default_factory=list)
    regime: PcfgRegime | None = None
    probe_cells: list[dict[str, Any]] = field(default_factory=list)
    grammar_name: str | None = None  # the grammar preset or file name (older results: None)

    def runs(self, depth: int) -> list[dict[str, Any]]:
        """Every training run's evaluation of one D_M (one per seed, the same items in each)."""
        return self.models[str(depth)]

    @property
    def depths(self) -> list[int]:
        return sorted(int(k) for k in self.models)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["findings"] = [v.to_dict() for v in self.findings]
        d["regime"] = None if self.regime is None else asdict(self.regime)
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
        p = Path(path)
        p = p / cls.FILE if p.is_dir() else p
        if not p.is_file():
            raise MetacondError(f"no PCFG study results at {str(p)!r} (run metacond pcfg-study first)")
        d = json.loads(p.read_text())
        if "models" not in d or "bayes" not in d:
            raise MetacondError(f"{p} is not a PCFG study's results.json (no models or bayes)")
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        d["findings"] = [Verdict.from_dict(v) for v in d.get("findings") or []]
        d["regime"] = None if not d.get("regime") else PcfgRegime(**d["regime"])
        return cls(**d)
