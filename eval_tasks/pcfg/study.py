"""``metacond pcfg-study``: the synthetic metadata-conditioning study end to end.

Trains one model per metadata depth D_M in {0, 1, 3, 5} on the same sequences (half of them show
their first D_M rule-set indices), then evaluates every model against the grammar's exact answers:
next-token loss with and without metadata beside the Bayes loss, linear probes of j_d against
prompt length beside the Bayes posterior, and CYK grammar accuracy of sampled continuations.
Writes results.json, report.md and PNG figures. Stages are cached; --force redoes them.

Examples:
  metacond pcfg-study --preset smoke --output_dir runs/pcfg-study-smoke     # ~1-2 min, CPU
  metacond pcfg-study --preset cpu --output_dir runs/pcfg-study-cpu         # <= 25 min on 2 CPU cores
  metacond pcfg-study --preset paper --output_dir runs/pcfg-study-paper     # one GPU
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from metacond import MetacondError


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
    bf16: bool = False
    warmup: float = 0.05
    logging_steps: int = 25


PRESETS: dict[str, StudyPreset] = {
    # Plumbing at test-suite speed: the numbers are not expected to show the paper's effects.
    "smoke": StudyPreset(grammar="small", model_size="tiny", train_size=1500, validation_size=150, test_size=150, max_steps=40, batch_size=16,
                         learning_rate=3e-3, loss_sequences=100, probe_pool=300, probe_lengths=(1, 5, 20, "full"), grammar_lengths=(1, 5, 20),
                         grammar_prompts=24, logging_steps=10),
    # 2 CPU cores, <= 25 minutes: a 1M-parameter model, ~1.5M training tokens per D_M (~6.9k tokens/s).
    "cpu": StudyPreset(grammar="small", model_size="mini", train_size=40_000, validation_size=1_000, test_size=1_000, max_steps=700, batch_size=32,
                       learning_rate=2e-3, loss_sequences=500, probe_pool=2_000, probe_lengths=(1, 2, 5, 10, 20, 50, "full"),
                       grammar_lengths=(1, 2, 5, 10, 20, 50), grammar_prompts=100),
    # One GPU: the paper-size model (12 x 768) on the `paper` grammar, ~1.3B training tokens per D_M.
    "paper": StudyPreset(grammar="paper", model_size="pcfg-paper", train_size=500_000, validation_size=2_000, test_size=2_000, max_steps=20_000,
                         batch_size=64, learning_rate=6e-4, loss_sequences=1_000, probe_pool=3_000, probe_lengths=(1, 2, 5, 10, 20, 50, 100, "full"),
                         grammar_lengths=(1, 2, 5, 10, 20, 50, 100), grammar_prompts=200, bf16=True, warmup=0.05, logging_steps=50),
}


@dataclass
class StudyArguments:
    preset: str = field(default="cpu", metadata={"help": "smoke (tests), cpu (<= 25 min on 2 cores) or paper (one GPU)."})
    output_dir: str | None = field(default=None, metadata={"help": "Study directory (default runs/pcfg-study-<preset>)."})
    metadata_depths: list[int] = field(default_factory=lambda: [0, 1, 3, 5], metadata={"help": "D_M values, one model each."})
    force: bool = field(default=False, metadata={"help": "Redo finished models and evaluations."})
    seed: int = field(default=0, metadata={"help": "Seed of data, initialization and sampling."})
    max_steps: int | None = field(default=None, metadata={"help": "Override the preset's training steps (e.g. to split a GPU run)."})
    greedy: bool = field(default=False, metadata={"help": "Grammar accuracy with greedy decoding instead of temperature-1 sampling."})

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise MetacondError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        if any(d < 0 for d in self.metadata_depths):
            raise MetacondError(f"metadata depths must be >= 0, got {self.metadata_depths}")


def main(argv: Sequence[str] | None = None) -> int:
    from metacond.config import parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    (args,) = parse_config([StudyArguments], argv, prog="metacond pcfg-study", description=__doc__)
    out = run_study(args)
    print(f"report: {out / 'report.md'}")
    return 0


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _save(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)


def train_model(p: StudyPreset, depth: int, out: Path, seed: int, max_steps: int | None) -> Path:
    """Train (or find finished) the D_M = ``depth`` model; ``--force`` already wiped the study directory."""
    from metacond.training.pretrain import parse_args, run_pretraining

    argv = ["--pcfg_grammar", p.grammar, "--pcfg_metadata_depth", str(depth), "--pcfg_metadata_fraction", "0.5", "--pcfg_train_size", str(p.train_size),
            "--pcfg_validation_size", str(p.validation_size), "--pcfg_test_size", str(p.test_size), "--pcfg_seed", str(seed),
            "--model_size", p.model_size, "--model_seed", str(seed), "--output_dir", str(out), "--per_device_train_batch_size", str(p.batch_size),
            "--max_steps", str(max_steps or p.max_steps), "--learning_rate", str(p.learning_rate), "--warmup_steps", str(p.warmup),
            "--logging_steps", str(p.logging_steps), "--save_steps", str(max(50, (max_steps or p.max_steps) // 4)), "--eval_strategy", "no",
            "--seed", str(seed), "--bf16", str(p.bf16).lower(), "--dataloader_pin_memory", "false"]
    run_pretraining(*parse_args(argv))
    return out


def evaluate_model(model_dir: Path, grammar, held, p: StudyPreset, depth: int, inference, seed: int, greedy: bool = False) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from .grammar_accuracy import grammar_accuracy
    from .loss import evaluate_loss
    from .probing import hidden_features, probe_accuracy
    from .prompts import PCFGLayout

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(dev)
    T, M, split = held["terminals"], held["metadata"], held["split"]
    test_idx = np.where(split == 2)[0]
    loss_idx = test_idx[: p.loss_sequences]
    res: dict[str, Any] = {"metadata_depth": depth, "model_dir": str(model_dir), "greedy": greedy}
    res["loss"] = evaluate_loss(model, grammar, [T[i] for i in loss_idx], [M[i].tolist() for i in loss_idx], depth, inference)
    feats, valid = hidden_features(model, PCFGLayout(grammar), T, p.probe_lengths)
    res["probing"] = probe_accuracy(feats, valid, M, grammar.num_variants, split, p.probe_lengths)
    Tt, Mt = [T[i] for i in test_idx], M[test_idx]
    res["grammar_masked"] = grammar_accuracy(model, grammar, Tt, Mt, depth, p.grammar_lengths, p.grammar_prompts, greedy=greedy, inference=inference, seed=seed)
    if depth > 0:
        res["grammar_metadata"] = grammar_accuracy(model, grammar, Tt, Mt, depth, p.grammar_lengths, p.grammar_prompts, greedy=greedy,
                                                   with_metadata=True, inference=inference, seed=seed)
    return res


def run_study(args: StudyArguments) -> Path:
    from datasets import load_from_disk
    from tqdm.auto import tqdm

    from metacond.data_builders.pcfg import Grammar, PCFGInference

    from .loss import unigram_loss
    from .probing import bayes_probe_accuracy
    from .report import write_report

    p = PRESETS[args.preset]
    out = Path(args.output_dir or f"runs/pcfg-study-{args.preset}")
    if args.force and out.exists():
        shutil.rmtree(out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "evals").mkdir(exist_ok=True)
    t0 = time.time()
    grammar = None
    depths = sorted(set(args.metadata_depths))
    model_dirs = {}
    for depth in tqdm(depths, desc="training (one model per D_M)", unit="model"):
        model_dirs[depth] = train_model(p, depth, out / "models" / f"dm{depth}", args.seed, args.max_steps)
        if grammar is None:
            ds_dir = Path(json.loads((model_dirs[depth] / "training_summary.json").read_text())["data"]["dataset"])
            grammar = Grammar.load(ds_dir / "grammar.json")
            dd = load_from_disk(str(ds_dir / "hf"))
        if depth > grammar.depth:
            raise MetacondError(f"D_M={depth} exceeds the grammar depth D={grammar.depth}")

    # Held-out pool (never trained on): validation + test sequences, the same for every D_M.
    pool = [dd["validation"], dd["test"]]
    T = [list(x) for part in pool for x in part["terminals"]][: p.probe_pool]
    M = np.array([m for part in pool for m in part["metadata"]][: p.probe_pool])
    split = np.tile(np.array([0, 0, 0, 1, 2]), len(T) // 5 + 1)[: len(T)]  # 60/20/20: probe train / layer choice / test
    held = {"terminals": T, "metadata": M, "split": split}
    inference = PCFGInference(grammar)

    bayes_path = out / "evals" / "bayes.json"
    bayes = _load(bayes_path)
    if bayes is None:
        bayes = {"probing": bayes_probe_accuracy(inference, T, M, split == 2, p.probe_lengths),
                 "unigram_loss": unigram_loss([list(x) for x in dd["train"]["terminals"][:20_000]], [T[i] for i in np.where(split == 2)[0][: p.loss_sequences]],
                                              len(grammar.terminals)),
                 "chance": [float(max(pr)) for pr in grammar.priors], "lengths": [str(L) for L in p.probe_lengths]}
        _save(bayes_path, bayes)
    evals = {}
    for depth in tqdm(depths, desc="evaluating", unit="model"):
        path = out / "evals" / f"dm{depth}.json"
        res = _load(path)
        if res is None or res.get("greedy", False) != args.greedy:  # decoding mode is part of the cache key
            res = evaluate_model(model_dirs[depth], grammar, held, p, depth, inference, args.seed, args.greedy)
            _save(path, res)
        evals[depth] = res
    results = {"preset": args.preset, "preset_config": asdict(p), "grammar": grammar.summary(), "metadata_depths": depths, "seed": args.seed,
               "bayes": bayes, "models": {str(k): v for k, v in evals.items()},
               "training": {str(k): _training_facts(model_dirs[k]) for k in depths}, "wall_time_seconds_this_invocation": round(time.time() - t0, 1)}
    write_report(out, results)
    return out


def _training_facts(model_dir: Path) -> dict[str, Any]:
    s = json.loads((model_dir / "training_summary.json").read_text())
    return {"parameters": s["model"]["parameters"], "tokens": s["tokens_seen"], "wall_time_seconds": s["wall_time_seconds"],
            "final_train_loss": s["final_train_loss"], "hardware": s["hardware"].get("cuda_devices") or s["hardware"].get("processor")}


if __name__ == "__main__":
    from metacond.main import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond pcfg-study"))
