"""Schemas of the files one step writes for the next: a run's ``training_summary.json`` and a build's ``metacond_build.json``.

Writers build these objects and call ``save``; readers call ``load`` and use attributes, so a key is
spelled in one place. The JSON layout is unchanged, so runs and builds written earlier still load.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, TypeVar

from metacond import MetacondError

T = TypeVar("T")


def write_json_atomically(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def strip_items(obj: Any, keys: tuple[str, ...]) -> Any:
    """The summary of a results tree: every list or mapping under one of ``keys`` (per-item scores) goes; a scalar of the
    same name (a difference's item count) stays."""
    if isinstance(obj, dict):
        return {k: strip_items(v, keys) for k, v in obj.items() if k not in keys or not isinstance(v, (list, dict))}
    if isinstance(obj, list):
        return [strip_items(v, keys) for v in obj]
    return obj


def known_fields(cls, d: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``d`` that are fields of the dataclass ``cls`` (keys a newer writer added are left out)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def dataclass_from_dict(cls, d: dict[str, Any], where: Path):
    missing = [f.name for f in fields(cls) if f.name not in d and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise MetacondError(f"{where} lacks {', '.join(missing)}")
    return cls(**known_fields(cls, d))


def read_results(path: str | Path, file_name: str, what: str, hint: str, required: tuple[str, ...] = ()) -> tuple[Path, dict[str, Any]]:
    """``file_name`` in the folder ``path`` (or the file ``path``) as JSON, after checking it exists and has ``required``."""
    p = Path(path)
    p = p / file_name if p.is_dir() else p
    if not p.is_file():
        raise MetacondError(f"no {what} at {str(p)!r} ({hint})")
    d = json.loads(p.read_text())
    if any(k not in d for k in required):
        raise MetacondError(f"{p} is not a {what} file (no {' or '.join(k for k in required if k not in d)})")
    return p, d


def parsed_or_refused(build: Callable[[], T], where: Path, what: str) -> T:
    """``build()``, or one line when the file holds what this version's schema does not read (a foreign or newer file)."""
    try:
        return build()
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise MetacondError(f"{where} is not a {what} file this version reads ({e})") from None


@dataclass
class TrainingSummary:
    """What a finished ``metacond pretrain`` run records; its presence marks the run as finished."""

    FILE = "training_summary.json"

    recipe: dict[str, Any]
    model: dict[str, Any]
    data: dict[str, Any]
    tokens_seen: dict[str, int]
    metadata_scheme: dict[str, Any]
    loss_curve: list[dict[str, Any]]
    final_train_loss: float | None
    wall_time_seconds: float
    train_metrics: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None
    hardware: dict[str, Any] = field(default_factory=dict)
    truncated_examples: int = 0
    # The build's validation split scored at the end of the run: {"loss", "examples", "split"}; None without one.
    validation: dict[str, Any] | None = None

    @classmethod
    def load(cls, run_dir: str | Path) -> "TrainingSummary":
        p = Path(run_dir) / cls.FILE
        if not p.is_file():
            raise MetacondError(f"{run_dir} is not a finished metacond run (no {cls.FILE})")
        return dataclass_from_dict(cls, json.loads(p.read_text()), p)

    def save(self, run_dir: str | Path) -> Path:
        p = Path(run_dir) / self.FILE
        write_json_atomically(p, asdict(self))
        return p

    @property
    def parameters(self) -> int:
        return int(self.model["parameters"])

    @property
    def input_tokens(self) -> int:
        return int(self.tokens_seen["input_tokens"])

    @property
    def steps(self) -> int | None:
        return self.recipe.get("training", {}).get("max_steps")

    @property
    def device(self) -> str:
        """The accelerator(s) if any, else the CPU."""
        return ", ".join(self.hardware.get("cuda_devices") or []) or str(self.hardware.get("processor", ""))

    def train_losses(self) -> list[float]:
        return [h["loss"] for h in self.loss_curve if "loss" in h]

    def build_setting(self, name: str) -> Any:
        """A setting of the news build the model trained on (e.g. ``url_style``, or ``template``: the one experiment
        folder it read), None when the run read no such build."""
        builder = self.metadata_scheme.get("builder") or {}
        return builder.get(name) if name in ("template", "metadata_mode") else (builder.get("config") or {}).get(name)

    def final_window_loss(self, fraction: float = 0.1) -> float | None:
        """Mean logged training loss over the last ``fraction`` of logged steps (the run average hides the end of training)."""
        losses = self.train_losses()
        if not losses:
            return None
        window = losses[-max(1, int(len(losses) * fraction)):]
        return float(sum(window) / len(window))


@dataclass
class BuildManifest:
    """A dataset build's identity: cache key, config, metadata layout; training reads it to render and mask metadata."""

    FILE = "metacond_build.json"

    key: str
    metadata_mode: str = "remove"
    config: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def exists(cls, build_dir: str | Path) -> bool:
        return (Path(build_dir) / cls.FILE).is_file()

    @classmethod
    def load(cls, build_dir: str | Path) -> "BuildManifest":
        p = Path(build_dir) / cls.FILE
        if not p.is_file():
            raise MetacondError(f"{build_dir} is not a metacond build (no {cls.FILE})")
        d = json.loads(p.read_text())
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: d[k] for k in known if k in d}, extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "extra" and v is not None}
        return d | self.extra

    def save(self, build_dir: str | Path) -> Path:
        p = Path(build_dir) / self.FILE
        write_json_atomically(p, self.to_dict())
        return p


def trained_setting(model_dir: str | Path, name: str, given: Any, flag: str, default: Any) -> Any:
    """The value of a metadata setting for a model: the one its training build recorded; ``given`` (a flag) must agree
    with it, and stands alone for models without a build record. ``default`` when neither says."""
    path = Path(model_dir)
    trained = TrainingSummary.load(path).build_setting(name) if (path / TrainingSummary.FILE).is_file() else None
    if trained is not None and given is not None and given != trained:
        raise MetacondError(f"--{flag} {given} contradicts the model's training build ({name} {trained}); drop the flag to use the build's")
    return given if given is not None else (trained if trained is not None else default)
