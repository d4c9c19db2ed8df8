"""The localization study's experiment grid and presets.

Paper grid (31 runs): at each size (0.5b, 1b), the balanced global dataset and each continent's
dataset, each with and without metadata (2 x 5 x 2 = 20); at 1b, leave-one-continent-out with and
without metadata (4 x 2 = 8); at 1b, URL-only, URL+country and URL+continent metadata (3). Beyond the
paper, one MeCo-style cooldown arm of the global model (metadata, then the last 10% of steps without).
The ``smoke`` preset keeps one run of each family at a tiny size (plumbing). The ``cpu`` preset trains
what its verdicts need and nothing else: the global model with and without metadata, one coarser-metadata
ablation the corpus supports, and the MeCo cooldown arm, each with ``seeds`` training runs (initialization
and data order); the ``gpu`` preset is the same design at a size well inside the regime, for one lent GPU.
Every arm of a preset trains the same number of *documents* (steps x batch), packed first-fit into rows of
``block_size`` tokens: on one experiment the arms see the same article tokens, the metadata arms also their prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    seed: int = 0  # training seed offset (initialization and data order); run k of an arm uses the study seed + k
    arm: str = ""  # the run's name without its seed: the runs of one arm are compared together

    @property
    def metadata(self) -> bool:
        return self.template != "none"


@dataclass(frozen=True)
class Preset:
    sizes: tuple[str, ...]
    grid: str  # paper (the 31 runs + cooldown), trim (one of each family) or global (the global arms the verdicts need)
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
    seeds: int = 1
    meta_template: str = "full"  # the metadata arm's template
    ablations: tuple[str, ...] = ("url", "url_country", "url_continent")
    balance: str = "continent"  # global / leave-one-out mixtures: equal per continent (the paper) or natural ("none")
    min_lr_rate: float = 0.0  # cosine to this fraction of the peak (MeCo: 0.1); 0 is cosine to zero
    workers: int = 1  # runs trained and evaluated side by side, one thread each (CPU presets; a GPU runs one at a time)


PRESETS: dict[str, Preset] = {
    "smoke": Preset(sizes=("tiny",), grid="trim", max_steps=6, batch_size=4, block_size=256, learning_rate=3e-3, logging_steps=2, sft_steps=4,
                    sft_batch_size=4, sft_learning_rate=3e-3, mcq_total=16, eval_limit=4, vocab_size=500, test_fraction=0.3),
    # 2 CPU cores, <= 40 minutes, on a corpus with a country per article (the shared Reuters set: no URLs, so the metadata
    # is the country, which is also the coarse "country-only" arm: no separate ablation). A 2M-parameter Llama (4 x 128,
    # 4k BPE) on 256-token rows, 800 steps x 8 articles (~1.8M article tokens at Reuters' ~288 tokens per article; under one
    # epoch), 2 seeds per arm trained two at a time, cosine to 10% of the peak (MeCo). Steps, not tokens, bound a model
    # this small: at equal tokens 8 articles per step beat 32 (train loss 4.60 at 0.93M tokens against 5.13 at 1.03M and
    # 4.64 at 2.26M with 32, measured here), and 240 steps of 32 ended out of regime (2.104 bits/byte against the bigram's 2.000).
    "cpu": Preset(sizes=("mini",), grid="global", max_steps=800, batch_size=8, block_size=256, learning_rate=3e-3, logging_steps=50, sft_steps=40,
                  sft_batch_size=8, sft_learning_rate=1e-3, mcq_total=100, vocab_size=4000, test_fraction=0.3, seeds=2, meta_template="country",
                  ablations=(), balance="none", min_lr_rate=0.1, workers=2),
    # One GPU: the same arms plus the continent-only ablation x 3 seeds at 10M parameters (6 x 256, 8k BPE), 800 steps x 32
    # articles (~7.4M tokens per run, about two epochs of the Reuters mixture: the corpus, not the GPU, bounds the tokens).
    "gpu": Preset(sizes=("small",), grid="global", max_steps=800, batch_size=32, block_size=512, learning_rate=2e-3, logging_steps=25,
                  sft_steps=100, sft_batch_size=16, sft_learning_rate=5e-4, mcq_total=400, bf16=True, vocab_size=8000, test_fraction=0.3, seeds=3,
                  meta_template="country", ablations=("continent",), balance="none", min_lr_rate=0.1),
    "paper": Preset(sizes=("0.5b", "1b"), grid="paper", max_steps=20_000, batch_size=256, block_size=2048, learning_rate=3e-4, logging_steps=50,
                    sft_steps=2_000, sft_batch_size=64, sft_learning_rate=2e-5, mcq_total=800, bf16=True, vocab_size=50_000, test_fraction=0.05,
                    min_lr_rate=0.1),
}


def arm_name(size: str, experiment: str = "global", variant: str = "meta") -> str:
    """An arm's name as every run, table and claim spells it: ``mini-global-meta``, ``1b-region-africa-nometa``,
    ``1b-loo-asia-meta``, ``1b-global-url-country``, ``1b-global-meta-cooldown``."""
    place = experiment.replace("leave-one-out/", "loo-").replace("/", "-")
    return f"{size}-{place}-{variant.replace('_', '-')}"


def _run(name: str, family: str, size: str, experiment: str, template: str, **kw) -> Run:
    return Run(name, family, size, experiment, template, arm=name, **kw)


def expand_grid(preset: str, seeds: int | None = None) -> list[Run]:
    """Every run of a preset: each arm once per seed (run names end in ``-s<k>`` when an arm has several seeds)."""
    p = PRESETS[preset]
    big = p.sizes[-1]
    meta = p.meta_template
    arms: list[Run] = []
    if p.grid == "global":
        arms += [_run(arm_name(big), "main", big, "global", meta), _run(arm_name(big, variant="nometa"), "main", big, "global", "none")]
        arms += [_run(arm_name(big, variant=t), "ablation", big, "global", t, paper=False) for t in p.ablations]
    else:
        for size in p.sizes:
            for exp in ("global",) + tuple(f"region/{c}" for c in CONTINENTS):
                for m in (True, False):
                    arms.append(_run(arm_name(size, exp, "meta" if m else "nometa"), "main", size, exp, meta if m else "none"))
        for c in CONTINENTS:
            for m in (True, False):
                arms.append(_run(arm_name(big, f"leave-one-out/{c}", "meta" if m else "nometa"), "leave-one-out", big, f"leave-one-out/{c}",
                                 meta if m else "none"))
        for t in p.ablations:
            arms.append(_run(arm_name(big, variant=t), "ablation", big, "global", t))
    arms.append(_run(arm_name(big, variant="meta-cooldown"), "cooldown", big, "global", meta, cooldown_fraction=0.1, paper=False))
    if p.grid == "trim":
        keep = {arm_name(big), arm_name(big, variant="nometa"), arm_name(big, "region/africa"), arm_name(big, "region/africa", "nometa"),
                arm_name(big, "leave-one-out/africa"), arm_name(big, variant="url"), arm_name(big, variant="meta-cooldown")}
        arms = [r for r in arms if r.name in keep]
    n = seeds or p.seeds
    if n == 1:
        return arms
    return [replace(r, name=f"{r.name}-s{k}", seed=k) for r in arms for k in range(n)]


def arm_runs(runs: list[Run]) -> dict[str, list[Run]]:
    """arm name -> its runs in seed order."""
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(r.arm, []).append(r)
    return out


def templates_needed(runs: list[Run], preset: str) -> list[str]:
    """Every template a run trains on, plus the metadata arm's (the evaluation's shared test split)."""
    return sorted({r.template for r in runs} | {PRESETS[preset].meta_template})
