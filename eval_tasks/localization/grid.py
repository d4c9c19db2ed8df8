"""The localization study's experiment grid and presets.

Paper grid (31 runs): at each size (0.5b, 1b), the balanced global dataset and each continent's
dataset, each with and without metadata (2 x 5 x 2 = 20); at 1b, leave-one-continent-out with and
without metadata (4 x 2 = 8); at 1b, URL-only, URL+country and URL+continent metadata (3). Beyond the
paper, one MeCo-style cooldown arm of the global model (metadata, then the last 10% of steps without).
The ``cpu`` and ``smoke`` presets keep the families with one tiny size (``smoke`` keeps one of each).
"""

from __future__ import annotations

from dataclasses import dataclass

from metacond.data_builders.news.geo import CONTINENTS  # re-exported: report.py imports it from here


@dataclass(frozen=True)
class Run:
    name: str
    family: str  # main, leave-one-out, ablation, cooldown
    size: str
    experiment: str  # global, region/<c>, leave-one-out/<c>
    template: str  # the news template the run trains on (none = no metadata)
    cooldown_fraction: float = 0.0
    paper: bool = True  # part of the paper's 31 runs

    @property
    def metadata(self) -> bool:
        return self.template != "none"

    @property
    def eval_condition(self) -> str:
        """The metadata condition the run is scored with when metadata is given."""
        return "full" if self.template == "none" else self.template


@dataclass(frozen=True)
class Preset:
    sizes: tuple[str, ...]
    max_steps: int
    batch_size: int
    block_size: int
    learning_rate: float
    logging_steps: int
    sft_steps: int
    sft_batch_size: int
    sft_learning_rate: float
    mcq_total: int
    eval_limit: int | None = None  # articles per continent in the perplexity evaluation (None: all)
    bf16: bool = False
    trim: bool = False  # one run per family variant (tests)
    vocab_size: int = 8000
    test_fraction: float = 0.1


PRESETS: dict[str, Preset] = {
    "smoke": Preset(sizes=("tiny",), max_steps=6, batch_size=4, block_size=256, learning_rate=3e-3, logging_steps=2, sft_steps=4, sft_batch_size=4,
                    sft_learning_rate=3e-3, mcq_total=16, eval_limit=4, trim=True, vocab_size=500, test_fraction=0.3),
    "cpu": Preset(sizes=("tiny",), max_steps=60, batch_size=8, block_size=512, learning_rate=3e-3, logging_steps=10, sft_steps=40, sft_batch_size=8,
                  sft_learning_rate=2e-3, mcq_total=200, vocab_size=4000, test_fraction=0.3),
    "paper": Preset(sizes=("0.5b", "1b"), max_steps=20_000, batch_size=256, block_size=2048, learning_rate=3e-4, logging_steps=50, sft_steps=2_000,
                    sft_batch_size=64, sft_learning_rate=2e-5, mcq_total=800, bf16=True, vocab_size=50_000, test_fraction=0.05),
}


def expand_grid(preset: str) -> list[Run]:
    p = PRESETS[preset]
    big = p.sizes[-1]
    runs: list[Run] = []
    for size in p.sizes:
        for exp in ("global",) + tuple(f"region/{c}" for c in CONTINENTS):
            for meta in (True, False):
                runs.append(Run(f"{size}-{exp.replace('/', '-')}-{'meta' if meta else 'nometa'}", "main", size, exp, "full" if meta else "none"))
    for c in CONTINENTS:
        for meta in (True, False):
            runs.append(Run(f"{big}-loo-{c}-{'meta' if meta else 'nometa'}", "leave-one-out", big, f"leave-one-out/{c}", "full" if meta else "none"))
    for t in ("url", "url_country", "url_continent"):
        runs.append(Run(f"{big}-global-{t.replace('_', '-')}", "ablation", big, "global", t))
    runs.append(Run(f"{big}-global-meta-cooldown", "cooldown", big, "global", "full", cooldown_fraction=0.1, paper=False))
    if p.trim:
        keep = {f"{big}-global-meta", f"{big}-global-nometa", f"{big}-region-africa-meta", f"{big}-region-africa-nometa", f"{big}-loo-africa-meta",
                f"{big}-global-url", f"{big}-global-meta-cooldown"}
        runs = [r for r in runs if r.name in keep]
    return runs


def templates_needed(runs: list[Run]) -> list[str]:
    return sorted({r.template for r in runs} | {"full"})
