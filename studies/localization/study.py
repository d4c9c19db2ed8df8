"""``metacond localization-study``: the geo-tagged news study end to end, over the paper's grid.

Stages (each cached under the study directory; rerunning the command resumes where it stopped):
  1. ``data/``: a news build with the global, region and leave-one-out experiments and every template
     the grid needs;
  2. ``models/<run>/``: one ``metacond pretrain`` run per grid entry (families: main, leave-one-out,
     ablation, and the beyond-paper cooldown arm);
  3. ``models/<run>/eval/``: per-continent perplexity of the shared balanced test split, with and
     without metadata, metadata never scored;
  4. ``ngram/``: the regime baselines on the same test articles and bytes: smoothed unigram and bigram
     models over the build's tokenizer, with and without the statistics of each article's own metadata
     value mixed in (what the metadata can buy; is the model a language model at all);
  5. ``mcq/``: a localized MCQ benchmark from the test split; ``sft/<run>/``: instruction tuning of the
     global models (plain for the model without metadata, metadata-prefixed for the one with), MCQ
     accuracy before (log-likelihood) and after (log-likelihood and generated answers);
  6. ``report.md``, ``results.json`` and PNG figures, with which of the paper's claims this run
     reproduced and with what numbers.

Every arm trains ``--seeds`` runs (initialization and data order); verdicts between arms carry the
seed spread. Models train on packed blocks and are evaluated within that block length. The MeCo
cooldown run resumes the metadata run of its seed at 90% of the steps (MeCo's own two-stage recipe:
the same optimizer and learning-rate schedule, the last 10% without metadata).

Examples:
  metacond localization-study --preset cpu --input news.jsonl --dry_run true     # the plan, budgets, compute
  metacond localization-study --preset cpu --input reuters21578.jsonl --regions all --country_column country   # <= 40 min, 2 cores
  metacond localization-study --preset paper --input cc_news --regions paper17   # the paper's 31 runs (GPUs)
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from metacond import MetacondError
from metacond.studies.stopwatch import Stopwatch
from metacond.studies.study_key import check_study_key

from .grid import PRESETS, Run, expand_grid, templates_needed

if TYPE_CHECKING:
    from metacond.training.arguments import PretrainingRecipe

COOLDOWN_FRACTION = 0.1  # MeCo: the last 10% of steps without metadata
CPU_EFFECTIVE_FLOPS = 30e9  # tiny models on 2 cores reach ~16% of the ~190 GFLOP/s fp32 peak (benchmarks/bench_pretrain.py)
GPU_EFFECTIVE_FLOPS = 0.4 * 989e12  # one H100 at 40% MFU (bf16 dense peak 989 TFLOP/s)


@dataclass
class LocalizationStudyArguments:
    preset: str = field(default="cpu", metadata={"help": "smoke (tests), cpu (global arms x 2 seeds, <= 40 min on 2 cores), gpu (the same x 3 "
                                                         "seeds, one GPU) or paper (31 runs + cooldown arm, GPUs)."})
    input: str | None = field(default=None, metadata={"help": "News corpus: JSONL/CSV/parquet path or Hub dataset name."})
    regions: str = field(default="paper17", metadata={"help": "Region preset or country list for the news build."})
    country_column: str | None = field(default=None, metadata={"help": "Country column of the corpus (e.g. 'country' for a corpus without URLs)."})
    seeds: int | None = field(default=None, metadata={"help": "Training runs per arm (default: the preset's)."})
    force: bool = field(default=False, metadata={"help": "Remove the study directory first and redo every stage."})
    output_dir: str | None = field(default=None, metadata={"help": "Study directory (default runs/localization-study-<preset>)."})
    dry_run: bool = field(default=False, metadata={"help": "Print the plan (runs, token budgets, compute estimate) and stop."})
    max_steps: int | None = field(default=None, metadata={"help": "Override the preset's pretraining steps."})
    skip_sft: bool = field(default=False, metadata={"help": "Skip instruction tuning and the MCQ stage."})
    seed: int = field(default=0, metadata={"help": "Seed of data splits and initialization."})
    workers: int | None = field(default=None, metadata={"help": "Runs trained and evaluated side by side, one thread each (default: the preset's; "
                                                               "1 on a GPU). With 1 on a CPU, one process uses every thread."})

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise MetacondError(f"workers must be >= 1, got {self.workers}")
        if self.preset not in PRESETS:
            raise MetacondError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        if not self.input and not self.dry_run:
            raise MetacondError("--input is required (a news corpus with URLs or a country column)")
        if self.seeds is not None and self.seeds < 1:
            raise MetacondError(f"seeds must be >= 1, got {self.seeds}")


def plan(args: LocalizationStudyArguments, out: Path | None = None) -> dict[str, Any]:
    """Runs, budgets and compute. A step is ``batch_size`` documents packed into ``block_size``-token rows, so a run's
    token budget is its documents times the mean tokens of its training documents: known once the data is built
    (``out``); before that the plan gives the bound ``documents x block_size``."""
    from metacond.modeling.sizes import count_parameters

    p = PRESETS[args.preset]
    steps = args.max_steps or p.max_steps
    runs = expand_grid(args.preset, args.seeds)
    rows = []
    for r in runs:
        n = count_parameters(r.size, p.vocab_size)
        docs = steps * p.batch_size
        mean = mean_train_tokens(out / "data" / r.experiment / r.template) if out is not None else None
        tokens = round(docs * mean) if mean else None
        flops = 6 * n * (tokens or docs * p.block_size)
        rows.append({**asdict(r), "parameters": n, "steps": steps, "documents": docs, "mean_document_tokens": mean, "token_budget": tokens,
                     "token_bound": docs * p.block_size, "train_flops": flops})
    total = sum(r["train_flops"] for r in rows)
    by_family: dict[str, int] = {}
    for r in runs:
        by_family[r.family] = by_family.get(r.family, 0) + 1
    return {"preset": args.preset, "runs": rows, "counts_by_family": by_family, "paper_runs": sum(r.paper for r in runs), "seeds": args.seeds or p.seeds,
            "total_train_flops": total, "estimate_hours_cpu": total / CPU_EFFECTIVE_FLOPS / 3600,
            "estimate_hours_one_h100": total / GPU_EFFECTIVE_FLOPS / 3600, "preset_config": asdict(p)}


def mean_train_tokens(dataset: Path) -> float | None:
    """Mean tokens per training document of a built experiment (metadata prefix included), or None before the build."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    f = dataset / "parquet" / "train.parquet"
    if not f.is_file():
        return None
    col = pq.read_table(f, columns=["input_ids"]).column("input_ids")
    return round(float(pc.mean(pc.list_value_length(col)).as_py()), 2) if len(col) else None


def print_plan(pl: dict[str, Any]) -> None:
    print(f"preset {pl['preset']}: {len(pl['runs'])} runs ({pl['paper_runs']} of the paper's grid) — " +
          ", ".join(f"{k} {v}" for k, v in pl["counts_by_family"].items()))
    print(f"{'run':<34} {'family':<14} {'size':<5} {'dataset':<28} {'params':>12} {'documents':>10} {'tokens':>15} {'PFLOP':>9}")
    for r in pl["runs"]:
        tokens = f"{r['token_budget']:,}" if r["token_budget"] else f"<= {r['token_bound']:,}"
        print(f"{r['name']:<34} {r['family']:<14} {r['size']:<5} {r['experiment'] + '/' + r['template']:<28} {r['parameters']:>12,} "
              f"{r['documents']:>10,} {tokens:>15} {r['train_flops'] / 1e15:>9.3f}")
    if not all(r["token_budget"] for r in pl["runs"]):
        print("tokens: each step packs batch_size documents into block_size-token rows; the budget is known once the data is built "
              "(documents x mean tokens per document), here bounded by documents x block_size")
    print(f"total training compute {pl['total_train_flops']:.3e} FLOPs: ~{pl['estimate_hours_cpu']:.2f} h on 2 CPU cores, "
          f"~{pl['estimate_hours_one_h100']:.2f} h on one H100 at 40% MFU (plus evaluation and instruction tuning)")


# ---------------------------------------------------------------------------------------------- stages
def build_data(args: LocalizationStudyArguments, out: Path) -> dict[str, Any]:
    from metacond.data_builders.news.builder import NewsBuildConfig, build_news

    p = PRESETS[args.preset]
    data = out / "data"
    if (data / "build_report.json").is_file():
        return json.loads((data / "build_report.json").read_text())
    runs = expand_grid(args.preset, args.seeds)
    experiments = sorted({r.experiment.split("/")[0] for r in runs}, key=["global", "region", "leave-one-out"].index)
    return build_news(NewsBuildConfig(input=args.input, regions=args.regions, experiments=experiments, country_column=args.country_column,
                                      templates=templates_needed(runs, args.preset), vocab_size=p.vocab_size, test_fraction=p.test_fraction,
                                      validation_fraction=0.05, num_proc=2, output_dir=str(data), seed=args.seed, balance=p.balance,
                                      overwrite_output_dir=True))  # no build_report.json: what is there is an interrupted build


def base_recipe(args: LocalizationStudyArguments) -> PretrainingRecipe:
    """The typed pretraining settings every run of the grid shares; ``recipe_for`` derives each run's with ``dataclasses.replace``."""
    import torch

    from metacond.training.arguments import DataArguments, MetadataArguments, ModelArguments, PretrainingArguments, PretrainingRecipe, RunArguments

    p = PRESETS[args.preset]
    # MeCo's schedule: cosine to a floor of 10% of the peak, so the cooldown's last steps still learn.
    sched: dict[str, Any] = dict(lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": p.min_lr_rate}) if p.min_lr_rate else {}
    train = PretrainingArguments(output_dir="unset", max_steps=args.max_steps or p.max_steps, per_device_train_batch_size=p.batch_size,
                                 learning_rate=p.learning_rate, logging_steps=p.logging_steps, save_strategy="no", disable_tqdm=True, bf16=p.bf16,
                                 use_cpu=not torch.cuda.is_available(), seed=args.seed, warmup_steps=0.05, **sched)
    # The model's positions are the training block: evaluation then cannot score a position training never saw.
    return PretrainingRecipe(model=ModelArguments(max_position_embeddings=p.block_size), data=DataArguments(packing=True, block_size=p.block_size),
                             metadata=MetadataArguments(), run=RunArguments(plot=False), training=train)


def recipe_for(base: PretrainingRecipe, r: Run, dataset: Path, model_dir: Path, prefix_of_cooldown: bool = False) -> PretrainingRecipe:
    """One run's settings: its size, data, seed (study seed + run seed: initialization and data order) and cooldown.
    ``prefix_of_cooldown``: also save the checkpoint where a cooldown arm of the same seed leaves this run."""
    from metacond.training.schedule import cooldown_start_step

    seed = base.training.seed + r.seed
    recipe = base.with_training(output_dir=str(model_dir), seed=seed, data_seed=seed)
    if prefix_of_cooldown:
        recipe = recipe.with_training(save_strategy="steps", save_steps=cooldown_start_step(recipe.training.max_steps, COOLDOWN_FRACTION))
    return replace(recipe, model=replace(base.model, model_size=r.size, model_seed=seed), data=replace(base.data, dataset=str(dataset)),
                   metadata=replace(base.metadata, cooldown_fraction=r.cooldown_fraction))


def _prefix_run(r: Run, runs: list[Run]) -> Run | None:
    """The metadata run a cooldown run continues: same arm prefix, template and seed."""
    if r.family != "cooldown":
        return None
    return next((x for x in runs if x.family == "main" and x.size == r.size and x.experiment == r.experiment and x.template == r.template
                 and x.seed == r.seed), None)


def train_run(r: Run, runs: list[Run], args: LocalizationStudyArguments, out: Path) -> dict[str, Any]:
    from metacond.modeling.checkpoint import is_finished
    from metacond.modeling.summary import BuildManifest, TrainingSummary
    from metacond.training.pretrain import run_pretraining
    from metacond.training.schedule import cooldown_start_step

    ds = out / "data" / r.experiment / r.template
    if not BuildManifest.exists(ds):
        return {"status": "skipped", "reason": f"no data for {r.experiment}/{r.template} (the corpus lacks that continent)"}
    mdir = out / "models" / r.name
    base = base_recipe(args)
    prefix = _prefix_run(r, runs)
    if not is_finished(mdir):
        if prefix is not None:
            # MeCo's cooldown continues the metadata run: copy its checkpoint at the cooldown step, then resume from it.
            step = cooldown_start_step(base.training.max_steps, r.cooldown_fraction)
            ckpt = out / "models" / prefix.name / f"checkpoint-{step}"
            if not ckpt.is_dir():
                raise MetacondError(f"{ckpt} is missing: the metadata run {prefix.name} must save it for the cooldown arm (rerun with --force)")
            if not (mdir / ckpt.name).is_dir():
                shutil.copytree(ckpt, mdir / ckpt.name)
        feeds_cooldown = any(_prefix_run(x, runs) == r for x in runs)
        run_pretraining(recipe_for(base, r, ds, mdir, prefix_of_cooldown=feeds_cooldown))
    s = TrainingSummary.load(mdir)
    curve = [p for p in s.loss_curve if "loss" in p]
    return {"status": "trained", "model_dir": str(mdir.relative_to(out)), "parameters": s.parameters, "tokens_seen": s.tokens_seen,
            "planned_tokens": planned_tokens(out, r.name),
            "last_logged_train_loss": curve[-1]["loss"] if curve else None, "final_window_train_loss": s.final_window_loss(0.1),
            "wall_time_seconds": s.wall_time_seconds, "resumed_from": Path(s.resumed_from).name if s.resumed_from else None, "loss_curve": s.loss_curve,
            "seed": base.training.seed + r.seed}


def planned_tokens(out: Path, name: str) -> int:
    """The run's token budget as the study's plan.json states it (written once the data is built): one definition,
    not a second read of the training split."""
    rows = json.loads((out / "plan.json").read_text())["runs"]
    return int(next((r["token_budget"] for r in rows if r["name"] == name), None) or 0)


def eval_run(r: Run, args: LocalizationStudyArguments, out: Path) -> dict[str, Any]:
    from metacond.eval_tasks.results import EvalResults
    from metacond.eval_tasks.run_eval import EvalArguments, run_eval

    p = PRESETS[args.preset]
    mdir = out / "models" / r.name
    path = mdir / "eval" / EvalResults.FILE
    if not path.is_file():
        cond = p.meta_template if r.template == "none" else r.template
        run_eval(EvalArguments(model=str(mdir), conditions=f"none,{cond}", ppl_data=str(test_file(args, out)), output_dir=str(mdir / "eval"),
                               limit=p.eval_limit, bootstrap_iters=200, batch_size=8, max_body_bytes=eval_body_bytes(p.block_size)))
    ev = EvalResults.load(path).to_dict()
    return {"summary": ev["summary"], "regional": [x for x in ev["regional"] if x["level"] == "continent"], "items": ev["items"]}


def test_file(args: LocalizationStudyArguments, out: Path) -> Path:
    """The shared balanced test split (the same articles in every experiment and template)."""
    return out / "data" / "global" / PRESETS[args.preset].meta_template / "parquet" / "test.parquet"


def eval_body_bytes(block_size: int) -> int:
    """Article bytes scored per test article: the block minus room for the metadata block (bytes bound tokens)."""
    return block_size - max(64, block_size // 8)


def ngram_stage(args: LocalizationStudyArguments, out: Path) -> dict[str, Any]:
    from .ngram import NgramArguments, ngram_baselines

    path = out / "ngram" / "ngram_baselines.json"
    if not path.is_file():
        p = PRESETS[args.preset]
        build = out / "data" / "global" / p.meta_template
        res = ngram_baselines(NgramArguments(train_file=str(build / "parquet" / "train.parquet"), test_file=str(test_file(args, out)),
                                             tokenizer=str(out / "data" / "tokenizer"), max_body_bytes=eval_body_bytes(p.block_size)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res))
    return json.loads(path.read_text())


def mcq_stage(runs: list[Run], args: LocalizationStudyArguments, out: Path, workers: int = 1) -> dict[str, Any]:
    """Build the MCQ set from the test split, then per global base model (``workers`` side by side): MCQ before,
    instruction tuning, MCQ after."""
    from metacond.data_builders.news.mcq import MCQBuildConfig, build_mcq
    from metacond.training.parallel import side_by_side

    p = PRESETS[args.preset]
    q = out / "mcq" / "questions.jsonl"
    test = test_file(args, out).parent
    if not q.is_file():
        build_mcq(MCQBuildConfig(test_file=str(test / "test.parquet"), train_file=str(test / "train.parquet"), total=p.mcq_total, output=str(q), seed=args.seed))
    if not q.read_text().strip():
        return {"status": "skipped", "reason": "the test split yielded no questions"}
    rep = q.with_name(q.stem + ".report.json")
    # Trivial baselines beside every accuracy: chance under rotated options, and answer-only heuristics of the built set.
    res: dict[str, Any] = {"questions": sum(1 for _ in open(q)), "models": {}, "chance": 0.25,
                           "answer_only_baselines": json.loads(rep.read_text()).get("answer_only_baselines") if rep.is_file() else None}
    base = [r for r in runs if r.family == "main" and r.experiment == "global" and (out / "models" / r.name / "config.json").is_file()]
    for r, m in zip(base, side_by_side(mcq_one, [(r, args, out) for r in base], workers, desc="MCQ and instruction tuning")):
        res["models"][r.name] = m
    return res


def mcq_one(r: Run, args: LocalizationStudyArguments, out: Path) -> dict[str, Any]:
    """One base model: MCQ accuracy, instruction tuning (TRL), MCQ accuracy again; each step cached on disk."""
    from trl import SFTConfig

    from metacond.eval_tasks.results import EvalResults
    from metacond.eval_tasks.run_eval import EvalArguments, run_eval
    from metacond.training.sft import SFTArguments, run_sft

    p = PRESETS[args.preset]
    q = out / "mcq" / "questions.jsonl"
    test = test_file(args, out).parent
    mdir, sdir = out / "models" / r.name, out / "sft" / r.name
    cond = p.meta_template if p.meta_template != "none" else "full"
    before = mdir / "eval_mcq" / "eval_results.json"
    if not before.is_file():
        run_eval(EvalArguments(model=str(mdir), conditions=f"none,{cond}", mcq_data=str(q), output_dir=str(before.parent), bootstrap_iters=200,
                               official=True))
    if not (sdir / "sft_summary.json").is_file():
        cfg = SFTConfig(output_dir=str(sdir), max_steps=p.sft_steps, per_device_train_batch_size=p.sft_batch_size, learning_rate=p.sft_learning_rate,
                        logging_steps=max(1, p.sft_steps // 8), save_strategy="no", report_to="none", bf16=p.bf16, max_length=p.block_size,
                        disable_tqdm=True, seed=args.seed)
        run_sft(SFTArguments(model=str(mdir), news_build=str(test.parent), metadata_prefix=r.metadata, use_lora=False), cfg)
    after = sdir / "eval_mcq" / "eval_results.json"
    if not after.is_file():
        run_eval(EvalArguments(model=str(sdir), conditions=f"none,{cond}", mcq_data=str(q), output_dir=str(after.parent), generative=True,
                               apply_chat_template=True, bootstrap_iters=200, official=True))
    sft = json.loads((sdir / "sft_summary.json").read_text())
    b, a = EvalResults.load(before).to_dict(), EvalResults.load(after).to_dict()
    return {"arm": r.arm, "seed": r.seed, "condition": cond, "before": b["summary"], "after": a["summary"],
            "before_items": b["items"], "after_items": a["items"],
            "sft": {k: sft[k] for k in ("first_loss", "last_loss", "wall_time_seconds")} | {"rows": sft["data"]["rows"], "metadata_prefix": r.metadata}}


def run_study(args: LocalizationStudyArguments) -> Path:
    from .report import write_report
    from .results import LocalizationStudyResults

    out = Path(args.output_dir or f"runs/localization-study-{args.preset}")
    pl = plan(args)
    if args.dry_run:
        print_plan(pl)
        return out
    t0 = time.time()
    if args.force and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    check_study_key(out, {"preset": pl["preset_config"], "seeds": pl["seeds"], "input": args.input, "regions": args.regions,
                           "country_column": args.country_column, "max_steps": args.max_steps, "seed": args.seed})
    (out / "plan.json").write_text(json.dumps(pl, indent=1))
    stage_s = Stopwatch()
    with stage_s("data"):
        data_report = build_data(args, out)
    pl = plan(args, out)  # the token budgets, now that the documents exist
    (out / "plan.json").write_text(json.dumps(pl, indent=1))
    runs = expand_grid(args.preset, args.seeds)
    results = LocalizationStudyResults(preset=args.preset, input=args.input, plan=pl, runs={}, meta_template=PRESETS[args.preset].meta_template,
                                       eval_body_bytes=eval_body_bytes(PRESETS[args.preset].block_size))

    import torch

    from metacond.training.parallel import side_by_side

    workers = 1 if torch.cuda.is_available() else (args.workers or PRESETS[args.preset].workers)
    results.workers = workers
    with stage_s("pretrain"):
        # Cooldown runs continue a metadata run's checkpoint: they train after the first wave.
        for wave in ([r for r in runs if _prefix_run(r, runs) is None], [r for r in runs if _prefix_run(r, runs) is not None]):
            for r, t in zip(wave, side_by_side(train_run, [(r, runs, args, out) for r in wave], workers, desc="pretraining runs")):
                results.runs[r.name] = {"run": asdict(r), "training": t}
        results.runs = {r.name: results.runs[r.name] for r in runs}
    with stage_s("evaluate"):
        trained = [r for r in runs if results.runs[r.name]["training"]["status"] == "trained"]
        for r, ev in zip(trained, side_by_side(eval_run, [(r, args, out) for r in trained], workers, desc="regional perplexity")):
            results.runs[r.name]["eval"] = ev
    with stage_s("ngram"):
        results.ngram = ngram_stage(args, out)
    with stage_s("mcq_sft"):
        results.mcq = {"status": "skipped", "reason": "--skip_sft"} if args.skip_sft else mcq_stage(runs, args, out, workers)
    results.data = {k: data_report.get(k) for k in ("counts", "per_continent", "per_country", "resolved_fraction", "experiments")}
    # Cached stages take ~0 s on a rerun: keep the time of the invocation that did the work.
    tpath = out / "stage_seconds.json"
    kept = json.loads(tpath.read_text()) if tpath.is_file() else {}
    for k, v in stage_s.items():
        # A rerun over cached stages still spends seconds loading them: keep the longest (the one that did the work).
        kept[k] = round(max(v, kept.get(k, 0.0)), 1)
    tpath.write_text(json.dumps(kept, indent=1))
    results.stage_seconds = kept
    results.stage_seconds_this_invocation = dict(stage_s)
    results.wall_time_seconds_this_invocation = round(time.time() - t0, 1)
    write_report(results, out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from metacond.config import parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    (args,) = parse_config([LocalizationStudyArguments], argv, prog="metacond localization-study", description=__doc__)
    out = run_study(args)
    if not args.dry_run:
        print(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    from metacond.cli import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond localization-study"))
