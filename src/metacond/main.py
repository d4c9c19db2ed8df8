"""The ``metacond`` command: one entry point dispatching to one ``main()`` per module.

Subcommand modules are imported only when called, so ``metacond --help`` answers at once.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from metacond import __version__
from metacond.cli import closed_pipe, run_guarded

# command -> (module, or module:function when the function is not ``main``; one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "pcfg": ("metacond.data_builders.pcfg.cli", "synthetic PCFG study data: grammars, datasets, parsing and exact scoring"),
    "eval": ("metacond.eval_tasks.run_eval", "run the localized MCQ and regional perplexity tasks through lm-eval and summarize"),
    "news": ("metacond.data_builders.news.cli", "geo-tagged news datasets: country resolution, experiments, metadata templates"),
    "pcfg-study": ("metacond.studies.pcfg.study", "the synthetic study end to end: one model per D_M, Bayes-referenced evaluations, report"),
    "pretrain": ("metacond.commands:pretrain", "pretrain a LlamaForCausalLM from scratch with metadata schedules and MeCo cooldown"),
    "compare-runs": ("metacond.studies.rerun", "two runs of one study side by side: overlapping intervals and compatible verdict words"),
    "localization-study": ("metacond.studies.localization.study", "the geo-tagged news study over the paper's 31-run grid: data, models, perplexity, SFT, MCQ, report"),
    "sft": ("metacond.training.sft", "instruction-tune a checkpoint with TRL (full or LoRA), plain or metadata-prefixed"),
    "card": ("metacond.model_cards.model_card", "write a model card (README.md with model-index eval results) into a run directory"),
    "push": ("metacond.model_cards.push", "publish a run or a dataset build to the Hub in one commit (--dry-run lists it)"),
}

USAGE = f"""usage: metacond <command> [options]

metacond {__version__}: metadata-conditioned language-model pretraining.

commands:
""" + "\n".join(f"  {name:<{max(map(len, COMMANDS))}}  {text}" for name, (_, text) in COMMANDS.items()) + """

Run `metacond <command> --help` for a command's options and a CPU-sized example, e.g.
  metacond pcfg build --grammar small --metadata_depth 3 --train_size 2000 --output_dir runs/pcfg-small
"""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        return closed_pipe()


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    cmd = argv[0]
    if cmd not in COMMANDS:
        print(f"metacond: error: unknown command {cmd!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, _, function = COMMANDS[cmd][0].partition(":")
    return run_guarded(getattr(importlib.import_module(module), function or "main"), argv[1:], f"metacond {cmd}")


if __name__ == "__main__":
    sys.exit(main())
