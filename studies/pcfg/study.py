"""``metacond pcfg-study``: the synthetic metadata-conditioning study end to end.

Builds the PCFG data once and trains one model per metadata depth D_M on the same sequences (half of
them show their first D_M rule-set indices), then evaluates every model against the grammar's exact
answers: next-token loss with and without metadata beside the Bayes loss (per sequence and per
position), linear probes of j_d on prompts the probe never saw beside the Bayes classifier, and CYK
grammar accuracy of sampled continuations. Each finding of the paper gets a paired, powered verdict
(eval_tasks/stats.py) on the cells where the Bayes answer can separate models. Writes results.json,
report.md, verdicts.txt and PNG figures. Stages are cached; --force redoes them.

Examples:
  metacond pcfg-study --preset smoke --output_dir runs/pcfg-study-smoke     # ~1-2 min, CPU
  metacond pcfg-study --preset cpu --output_dir runs/pcfg-study-cpu         # D_M 0 and 5 x 2 seeds, <= 25 min on 2 CPU cores
  metacond pcfg-study --preset cpu --seeds 3                                 # a third training run per D_M (cached runs are kept)
  metacond pcfg-study --preset cpu-full                                     # D_M 0, 1, 3, 5 (about twice as long)
  metacond pcfg-study --preset paper --output_dir runs/pcfg-study-paper     # one GPU
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from metacond import MetacondError
from metacond.studies.stopwatch import Stopwatch
from metacond.studies.study_key import check_study_key
from metacond.training.parallel import side_by_side

if TYPE_CHECKING:
    from metacond.training.arguments import PretrainingRecipe

@dataclass(frozen=True)
class StudyPreset:
    grammar: str
    model_size: str
    train_size: int
    validation_size: int
    test_size: int
    max_steps: int
    batch_size: int
    learning_rate: float
    loss_sequences: int
    probe_pool: int
    probe_lengths: tuple
    grammar_lengths: tuple
    grammar_prompts: int
    metadata_depths: tuple = (0, 1, 3, 5)
    seeds: int = 2  # training runs per D_M (init and data order); verdicts between models need >= 2
    workers: int = 1  # training processes side by side (one thread each on a CPU; benchmarks/bench_seed_parallel.py)
    bf16: bool = False
    packing: bool = False  # first-fit rows of the longest sequence instead of padded batches (same examples per step)
    warmup: float = 0.05
    logging_steps: int = 25


PRESETS: dict[str, StudyPreset] = {
    # Plumbing at test-suite speed: the numbers are not expected to show the paper's effects.
    "smoke": StudyPreset(grammar="cpu", model_size="tiny", train_size=1500, validation_size=200, test_size=200, max_steps=40, batch_size=16,
                         learning_rate=3e-3, loss_sequences=100, probe_pool=400, probe_lengths=(1, 5, 20, "full"), grammar_lengths=(1, 5, 20),
                         grammar_prompts=24, metadata_depths=(0, 5), logging_steps=10, workers=2),
    # 2 CPU cores, `make demo` <= 25 minutes: the two ends of the D_M grid x 2 seeds, each a 1M-parameter model on ~3.7M tokens of
    # the `cpu` grammar (short prompts identify the latent); 4,000 held-out sequences give >= 1,000 probe test items per L.
    # 2,200 steps (was 3,000 with one seed): four runs must fit. Two single-thread processes side by side train 8.3 steps/s
    # together against 6.5 for one two-thread process (benchmarks/last_seed_parallel_run.json; 7.4 vs 6.0 in the reference
    # runs themselves), so they do.
    "cpu": StudyPreset(grammar="cpu", model_size="mini", train_size=100_000, validation_size=2_000, test_size=2_000, max_steps=2_200, batch_size=32,
                       learning_rate=3e-3, loss_sequences=1_000, probe_pool=4_000, probe_lengths=(1, 2, 3, 5, 10, 20, "full"),
                       grammar_lengths=(1, 2, 5, 10, 20), grammar_prompts=300, metadata_depths=(0, 5), logging_steps=50, workers=2),
    # The same at every D_M of the paper's grid (about twice as long).
    "cpu-full": StudyPreset(grammar="cpu", model_size="mini", train_size=100_000, validation_size=2_000, test_size=2_000, max_steps=2_200, batch_size=32,
                            learning_rate=3e-3, loss_sequences=1_000, probe_pool=4_000, probe_lengths=(1, 2, 3, 5, 10, 20, "full"),
                            grammar_lengths=(1, 2, 5, 10, 20), grammar_prompts=300, metadata_depths=(0, 1, 3, 5), logging_steps=50, workers=2),
    # One GPU: the paper-size model (12 x 768) on the `paper` grammar, ~1.3B training tokens per D_M.
    "paper": StudyPreset(grammar="paper", model_size="pcfg-paper", train_size=500_000, validation_size=3_000, test_size=3_000, max_steps=20_000,
                         batch_size=64, learning_rate=6e-4, loss_sequences=2_000, probe_pool=6_000, probe_lengths=(1, 2, 3, 5, 10, 20, 50, 100, "full"),
                         grammar_lengths=(1, 2, 5, 10, 20, 50, 100), grammar_prompts=400, seeds=3, bf16=True, warmup=0.05, logging_steps=50),
}


@dataclass
class StudyArguments:
    preset: str = field(default="cpu", metadata={"help": "smoke (tests), cpu (D_M 0 and 5, <= 25 min on 2 cores), cpu-full (all four D_M) or paper (one GPU)."})
    output_dir: str | None = field(default=None, metadata={"help": "Study directory (default runs/pcfg-study-<preset>)."})
    metadata_depths: list[int] | None = field(default=None, metadata={"help": "D_M values, one model each (default: the preset's)."})
    force: bool = field(default=False, metadata={"help": "Redo finished models and evaluations."})
    seed: int = field(default=0, metadata={"help": "Seed of the data; training run k of every D_M uses seed + k for initialization and data order."})
    seeds: int | None = field(default=None, metadata={"help": "Training runs per D_M (default: the preset's; >= 2 for verdicts between models)."})
    workers: int | None = field(default=None, metadata={"help": "Models trained side by side, one thread each (default: the preset's; 1 on a GPU)."})
    max_steps: int | None = field(default=None, metadata={"help": "Override the preset's training steps (e.g. to split a GPU run)."})
    greedy: bool = field(default=False, metadata={"help": "Grammar accuracy with greedy decoding instead of temperature-1 sampling."})

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise MetacondError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        if self.metadata_depths is not None and any(d < 0 for d in self.metadata_depths):
            raise MetacondError(f"metadata depths must be >= 0, got {self.metadata_depths}")
        if self.max_steps is not None and self.max_steps < 1:
            raise MetacondError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.seeds is not None and self.seeds < 1:
            raise MetacondError(f"seeds must be >= 1, got {self.seeds}")
        if self.workers is not None and self.workers < 1:
            raise MetacondError(f"workers must be >= 1, got {self.workers}")


def main(argv: Sequence[str] | None = None) -> int:
    from metacond.config import parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    (args,) = parse_config([StudyArguments], argv, prog="metacond pcfg-study", description=__doc__)
    out = run_study(args)
    print((out / "verdicts.txt").read_text())
    print(f"report: {out / 'report.md'}")
    return 0


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _save(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, default=str))
    tmp.replace(path)


def build_data(p: StudyPreset, seed: int):
    """One build for every model: the sequences show all D levels; each D_M model masks the levels it must not see."""
    from metacond.data_builders.pcfg.dataset import PCFGDataConfig, build_pcfg_dataset
    from metacond.data_builders.pcfg.grammar import resolve_grammar

    depth = resolve_grammar(p.grammar).depth
    cfg = PCFGDataConfig(grammar=p.grammar, metadata_depth=depth, metadata_fraction=0.5, train_size=p.train_size,
                         validation_size=p.validation_size, test_size=p.test_size, seed=seed, bayes_sample=0)
    dd, out, _ = build_pcfg_dataset(cfg, progress=True)
    return dd, out


def base_recipe(p: StudyPreset, dataset_dir: Path, seed: int, max_steps: int | None) -> PretrainingRecipe:
    """The typed settings every D_M shares; ``recipe_for`` derives each model's with ``dataclasses.replace``."""
    import torch

    from metacond.training.arguments import DataArguments, MetadataArguments, ModelArguments, PretrainingArguments, PretrainingRecipe, RunArguments

    steps = max_steps or p.max_steps
    train = PretrainingArguments(output_dir=str(dataset_dir / "unused"), per_device_train_batch_size=p.batch_size, max_steps=steps,
                                 learning_rate=p.learning_rate, warmup_steps=p.warmup, logging_steps=p.logging_steps,
                                 save_steps=max(50, steps // 4), eval_strategy="no", seed=seed, bf16=p.bf16,
                                 use_cpu=not torch.cuda.is_available(), dataloader_pin_memory=False)
    data = DataArguments(dataset=str(dataset_dir))
    if p.packing:
        # Rows as wide as the longest training sequence: packing never cuts one, and attention stays row-local.
        data = replace(data, packing=True, block_size=longest_sequence(dataset_dir))
    return PretrainingRecipe(model=ModelArguments(model_size=p.model_size, model_seed=seed), data=data, metadata=MetadataArguments(metadata_mode="mask"),
                             run=RunArguments(), training=train)


def longest_sequence(dataset_dir: Path, multiple: int = 8) -> int:
    """The longest training sequence of a PCFG build, rounded up to ``multiple`` tokens."""
    import datasets
    import pyarrow.compute as pc

    col = datasets.load_from_disk(str(Path(dataset_dir) / "hf"))["train"].data.column("input_ids")
    n = int(pc.max(pc.list_value_length(col)).as_py())
    return -(-n // multiple) * multiple


def recipe_for(base: PretrainingRecipe, depth: int, grammar_depth: int, out: Path, seed: int | None = None) -> PretrainingRecipe:
    """D_M = ``depth``: show the first ``depth`` metadata slots of rows that carry metadata, mask the rest.
    ``seed``: this run's initialization and data-order seed (default: the base recipe's)."""
    recipe = replace(base, metadata=replace(base.metadata, metadata_field_dropout=[0.0] * depth + [1.0] * (grammar_depth - depth)))
    if seed is not None:
        recipe = replace(recipe, model=replace(recipe.model, model_seed=seed)).with_training(seed=seed, data_seed=seed)
    return recipe.with_training(output_dir=str(out))


def run_name(depth: int, seed: int) -> str:
    return f"dm{depth}-seed{seed}"


def _train_one(recipe: PretrainingRecipe) -> str:
    from metacond.training.pretrain import run_pretraining

    run_pretraining(recipe)
    return str(recipe.training.output_dir)


def train_models(recipes: list[PretrainingRecipe], workers: int) -> None:
    """Train every recipe whose run is not finished: in this process, or ``workers`` single-thread processes side by side."""
    from metacond.modeling.checkpoint import is_finished

    todo = [r for r in recipes if not is_finished(str(r.training.output_dir))]
    if workers > 1 and len(todo) > 1:
        todo = [r.with_training(disable_tqdm=True) for r in todo]
    side_by_side(_train_one, [(r,) for r in todo], workers, desc="training")


def evaluate_model(model_dir: Path, grammar, held, p: StudyPreset, depth: int, inference, seed: int, greedy: bool = False) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from metacond.eval_tasks.pcfg.grammar_accuracy import grammar_accuracy
    from metacond.eval_tasks.pcfg.loss import evaluate_loss
    from metacond.eval_tasks.pcfg.probing import hidden_features, probe_accuracy
    from metacond.eval_tasks.pcfg.prompts import PCFGLayout

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(dev)
    T, M = held["terminals"], held["metadata"]
    res: dict[str, Any] = {"metadata_depth": depth, "model_dir": str(model_dir), "greedy": greedy}
    li = held["loss_index"]
    res["seconds"] = watch = Stopwatch()
    with watch("loss"):
        res["loss"] = evaluate_loss(model, grammar, [T[i] for i in li], [M[i].tolist() for i in li], depth, inference, bayes_tokens=held["bayes_tokens"])
    with watch("probing"):
        feats, valid = hidden_features(model, PCFGLayout(grammar), T, p.probe_lengths)
        res["probing"] = probe_accuracy(feats, valid, M, grammar.num_variants, held["probe_split"], held["probe_groups"], p.probe_lengths, seed=seed)
        del feats
    with watch("grammar"):
        gi = held["grammar_index"]
        Tt, Mt = [T[i] for i in gi], M[gi]
        res["grammar_masked"] = grammar_accuracy(model, grammar, Tt, Mt, depth, p.grammar_lengths, p.grammar_prompts, greedy=greedy, inference=inference,
                                                 seed=seed)
        if depth > 0:
            res["grammar_metadata"] = grammar_accuracy(model, grammar, Tt, Mt, depth, p.grammar_lengths, p.grammar_prompts, greedy=greedy,
                                                       with_metadata=True, inference=inference, seed=seed)
    return res


def _evaluate_one(model_dir: Path, grammar, held, p: StudyPreset, depth: int, inference, seed: int, greedy: bool, path: Path) -> dict[str, Any]:
    res = evaluate_model(model_dir, grammar, held, p, depth, inference, seed, greedy)
    _save(path, res)
    return res


def held_out(dd, p: StudyPreset, inference, seed: int) -> dict[str, Any]:
    """The evaluation pool (validation + test, never trained on), its probe splits and the Bayes references."""
    from metacond.data_builders.pcfg.inference import bayes_classifier_correct
    from metacond.eval_tasks.pcfg.loss import bayes_token_nll
    from metacond.eval_tasks.pcfg.probing import prompt_groups, prompt_split

    T = [list(x) for part in (dd["validation"], dd["test"]) for x in part["terminals"]][: p.probe_pool]
    M = np.array([m for part in (dd["validation"], dd["test"]) for m in part["metadata"]][: p.probe_pool])
    n_val = len(dd["validation"])
    test_index = np.arange(n_val, len(T))  # loss and grammar prompts come from the test split
    loss_index = test_index[: p.loss_sequences]
    return {"terminals": T, "metadata": M, "probe_split": prompt_split(T, p.probe_lengths, seed=seed),
            "probe_groups": [prompt_groups(T, L) for L in p.probe_lengths], "loss_index": loss_index, "grammar_index": test_index,
            "bayes_correct": bayes_classifier_correct(inference, T, M, p.probe_lengths),
            "bayes_tokens": bayes_token_nll(inference, [T[i] for i in loss_index])}


def run_study(args: StudyArguments) -> Path:

    from metacond.data_builders.pcfg import Grammar, PCFGInference
    from metacond.eval_tasks.pcfg.grammar_accuracy import unigram_grammar_accuracy
    from metacond.eval_tasks.pcfg.loss import unigram_loss, unigram_probs
    from metacond.eval_tasks.pcfg.results import PcfgStudyResults

    from .report import write_report

    p = PRESETS[args.preset]
    out = Path(args.output_dir or f"runs/pcfg-study-{args.preset}")
    if args.force and out.exists():
        shutil.rmtree(out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "evals").mkdir(exist_ok=True)
    t0 = time.time()
    stages = Stopwatch()
    with stages("data"):
        dd, ds_dir = build_data(p, args.seed)
    check_study_key(out, {"preset": asdict(p) | {"seeds": None, "workers": None}, "seed": args.seed, "max_steps": args.max_steps or p.max_steps,
                           "data": ds_dir.name})
    grammar = Grammar.load(ds_dir / "grammar.json")
    depths = sorted(set(args.metadata_depths if args.metadata_depths is not None else p.metadata_depths))
    if max(depths) > grammar.depth:
        raise MetacondError(f"D_M={max(depths)} exceeds the grammar depth D={grammar.depth}")
    base = base_recipe(p, ds_dir, args.seed, args.max_steps)
    n_seeds = args.seeds or p.seeds
    import torch

    workers = 1 if torch.cuda.is_available() else (args.workers or p.workers)
    runs = [(depth, args.seed + k) for depth in depths for k in range(n_seeds)]
    model_dirs = {run: out / "models" / run_name(*run) for run in runs}
    with stages("train"):
        train_models([recipe_for(base, d, grammar.depth, model_dirs[(d, s)], s) for d, s in runs], workers)

    with stages("references"):
        inference = PCFGInference(grammar)
        held = held_out(dd, p, inference, args.seed)
        train_sample = [list(x) for x in dd["train"]["terminals"][:20_000]]
        bayes = {"probe_correct": held["bayes_correct"].tolist(), "probe_groups": [g.tolist() for g in held["probe_groups"]],
                 "lengths": [str(L) for L in p.probe_lengths],
                 "chance": [float(max(pr)) for pr in grammar.priors],
                 "unigram_loss": unigram_loss(train_sample, [held["terminals"][i] for i in held["loss_index"]], len(grammar.terminals)),
                 "grammar_unigram": {str(k): v for k, v in unigram_grammar_accuracy(
                     grammar, [held["terminals"][i] for i in held["grammar_index"]], unigram_probs(train_sample, len(grammar.terminals)),
                     p.grammar_lengths, p.grammar_prompts, inference, args.seed).items()}}
    evals: dict[str, list[dict[str, Any]]] = {str(d): [] for d in depths}
    with stages("evaluate"):
        cached = {run: _load(out / "evals" / f"{run_name(*run)}.json") for run in runs}
        # Decoding mode is part of the cache key. Evaluation randomness (probe folds, sampled continuations, prompts) follows the
        # study seed, so every run is scored on the same items.
        todo = [run for run in runs if cached[run] is None or cached[run].get("greedy", False) != args.greedy]
        done = side_by_side(_evaluate_one, [(model_dirs[run], grammar, held, p, run[0], inference, args.seed, args.greedy,
                                             out / "evals" / f"{run_name(*run)}.json") for run in todo], workers, desc="evaluating")
        cached |= dict(zip(todo, done))
    for d, seed in runs:
        evals[str(d)].append(cached[(d, seed)] | {"training_seed": seed})
    steps = args.max_steps or p.max_steps
    results = PcfgStudyResults(preset=args.preset, preset_config=asdict(p) | {"max_steps": steps, "seeds": n_seeds, "workers": workers},
                               grammar=grammar.summary(), grammar_name=grammar.name, metadata_depths=depths, seed=args.seed,
                               training_seeds=[args.seed + k for k in range(n_seeds)], bayes=bayes, models=evals,
                               training={str(d): [_training_facts(model_dirs[(d, s)], out) | {"seed": s} for dd, s in runs if dd == d] for d in depths},
                               wall_time_seconds_this_invocation=round(time.time() - t0, 1), stage_seconds_this_invocation=dict(stages))
    write_report(out, results)
    return out


def _training_facts(model_dir: Path, study_dir: Path) -> dict[str, Any]:
    from metacond.modeling.summary import TrainingSummary

    s = TrainingSummary.load(model_dir)
    return {"parameters": s.parameters, "tokens": s.tokens_seen, "wall_time_seconds": s.wall_time_seconds, "steps": s.steps,
            "final_window_train_loss": s.final_window_loss(0.1), "model_dir": str(model_dir.relative_to(study_dir)), "hardware": s.device}


if __name__ == "__main__":
    from metacond.cli import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond pcfg-study"))
