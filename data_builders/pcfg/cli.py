"""``metacond pcfg``: grammars, datasets, parsing and exact scoring for the synthetic study.

Subcommands:
  build     sample a dataset (train/validation/test) with a metadata prefix and loss mask
  grammar   generate a grammar from size parameters (or a preset) and save it as JSON
  validate  load a grammar file and report it, or name what is wrong in one line
  parse     CYK membership and exact log-probabilities of sequences given on the command line
  bayes-table  how well the ideal (Bayes) classifier reads each level's metadata from the first L terminals
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from metacond import MetacondError

EXAMPLES = {
    "build": "metacond pcfg build --grammar small --metadata_depth 3 --train_size 2000 --output_dir runs/pcfg-small",
    "grammar": "metacond pcfg grammar --preset small --seed 1 --out my_grammar.json",
    "validate": "metacond pcfg validate my_grammar.json",
    "bayes-table": "metacond pcfg bayes-table --grammar cpu --sequences 1000",
    "parse": "metacond pcfg parse --grammar tiny 't0 t0 t1 t0' --metadata 0,0",
}


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nExamples (CPU-sized):\n" + "\n".join(f"  {v}" for v in EXAMPLES.values()))
        return 0
    sub, rest = argv[0], argv[1:]
    handlers = {"build": _build, "grammar": _grammar, "validate": _validate, "parse": _parse, "bayes-table": _bayes_table}
    if sub not in handlers:
        raise MetacondError(f"unknown pcfg subcommand {sub!r}; choose from {', '.join(handlers)}")
    return handlers[sub](rest)


@dataclass
class BayesTableArguments:
    grammar: str = field(default="cpu", metadata={"help": "Grammar preset or grammar file."})
    sequences: int = field(default=2000, metadata={"help": "Sequences sampled to estimate each cell."})
    lengths: list[str] = field(default_factory=lambda: ["1", "2", "5", "10", "20", "50", "full"], metadata={"help": "Prompt lengths L (or 'full')."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})

    def __post_init__(self) -> None:
        if self.sequences < 1:
            raise MetacondError(f"sequences must be >= 1, got {self.sequences}")
        for L in self.lengths:
            if L != "full" and not (L.isdigit() and int(L) >= 0):
                raise MetacondError(f"a prompt length is a non-negative integer or 'full', got {L!r}")


def _bayes_table(argv: list[str]) -> int:
    from metacond.config import parse_config

    from .grammar import resolve_grammar
    from .inference import INFORMATIVE_MAX_ACCURACY, INFORMATIVE_MIN_GAIN, bayes_table, format_bayes_table

    (a,) = parse_config([BayesTableArguments], argv, prog="metacond pcfg bayes-table",
                        description="Bayes probe accuracy of every metadata level against prompt length L.\n\nExample:\n  " + EXAMPLES["bayes-table"])
    t = bayes_table(resolve_grammar(a.grammar), a.sequences, [L if L == "full" else int(L) for L in a.lengths], a.seed)
    print(f"{t['grammar']}; {t['sequences']} sampled sequences, length min/mean/max {t['length_min_mean_max']}")
    print(format_bayes_table(t))
    print(f"bold: informative cells (Bayes >= chance + {INFORMATIVE_MIN_GAIN:.2f} and <= {INFORMATIVE_MAX_ACCURACY:.2f}); only these enter verdicts")
    return 0


def _build(argv: list[str]) -> int:
    from metacond.config import parse_config

    from .dataset import PCFGDataConfig, build_pcfg_dataset

    (cfg,) = parse_config([PCFGDataConfig], argv, prog="metacond pcfg build",
                          description="Build a PCFG dataset with a metadata prefix and loss mask.\n\nExample:\n  " + EXAMPLES["build"])
    dd, out, stats = build_pcfg_dataset(cfg)
    print(f"dataset: {out}{'  (cached)' if stats.get('cached') else ''}")
    for split, s in stats["splits"].items():
        print(f"  {split:<10} {s['sequences']:>7} sequences, {s['terminals']:>9} terminals, "
              f"length {s['length_min']}/{s['length_mean']}/{s['length_max']} (min/mean/max), {s['with_metadata']} with metadata")
    if "bayes" in stats:
        b = stats["bayes"]
        line = f"  Bayes-optimal loss on {b['sequences']} test sequences: {b['loss_no_metadata']:.4f} nats/token without metadata"
        if "loss_with_metadata" in b:
            line += f", {b['loss_with_metadata']:.4f} with D_M={cfg.metadata_depth} metadata"
        print(line)
    print(f"  columns: {', '.join(dd['train'].column_names)}")
    print("  files: hf/ (save_to_disk), parquet/, grammar.json, tokenizer/, README.md")
    return 0


@dataclass
class GrammarArgs:
    preset: str | None = field(default=None, metadata={"help": "Start from a preset (small, paper, tiny); size flags override it."})
    out: str | None = field(default=None, metadata={"help": "Write the grammar JSON here."})
    name: str = field(default="generated", metadata={"help": "Grammar name stored in the JSON."})


def _constant(value: Any) -> Callable[[], Any]:
    """A ``default_factory`` that gives ``value`` itself."""
    return lambda: value


def _grammar(argv: list[str]) -> int:
    import dataclasses

    from metacond.config import parse_config

    from .grammar import PRESETS, GrammarSpec, generate_grammar

    preset = None
    if "--preset" in argv:
        i = argv.index("--preset")
        preset = argv[i + 1] if i + 1 < len(argv) else None
    if preset is not None and preset not in PRESETS:
        raise MetacondError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    spec_cls: type = GrammarSpec
    if preset:
        # Preset values become the defaults that size flags override.
        spec_cls = dataclasses.make_dataclass("GrammarSpec", [
            (f.name, f.type, field(default_factory=_constant(PRESETS[preset][f.name]), metadata=f.metadata)) for f in dataclasses.fields(GrammarSpec)
        ], bases=(GrammarSpec,))
    args, spec = parse_config([GrammarArgs, spec_cls], argv, prog="metacond pcfg grammar",
                              description="Generate a leveled PCFG with rule-set variants.\n\nExample:\n  " + EXAMPLES["grammar"])
    g = generate_grammar(GrammarSpec(**dataclasses.asdict(spec)), name=args.preset or args.name)
    print(g.summary())
    if args.out:
        g.save(args.out)
        print(f"wrote {args.out}")
    else:
        print(g.to_json())
    return 0


def _validate(argv: list[str]) -> int:
    from .grammar import Grammar

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: metacond pcfg validate [--strict] GRAMMAR_FILE [...]\n\nLoad grammar files (JSON schema metacond.pcfg/v1, or 'A -> B C [p] | …' text)\n"
              "and report each, or name the offending rule in one line. Nonterminals unreachable from the start\n"
              "symbol of a plain grammar are pruned with a warning; --strict refuses them instead.\n\nExample:\n  " + EXAMPLES["validate"])
        return 0
    strict = "--strict" in argv
    paths = [a for a in argv if a != "--strict"]
    if not paths:
        raise MetacondError("no grammar file given")
    bad = 0
    for path in paths:
        # Pruning warnings become one plain line each instead of Python's file:line warning format.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                g = Grammar.load(path, strict=strict)
            except MetacondError as e:  # report every file, then fail
                print(f"{path}: error: {e}", file=sys.stderr)
                bad += 1
                continue
        for w in caught:
            print(f"{path}: warning: {w.message}", file=sys.stderr)
        print(f"{path}: ok, {g.summary()}")
    if bad:
        if len(paths) > 1:
            print(f"{bad} of {len(paths)} grammar files are invalid", file=sys.stderr)
        return 2
    return 0


@dataclass
class ParseArgs:
    grammar: str = field(default="small", metadata={"help": "Grammar preset or file."})
    metadata: str | None = field(default=None, metadata={"help": "Known leading metadata indices, comma-separated (e.g. 1,0)."})
    file: str | None = field(default=None, metadata={"help": "Read sequences from this file, one per line (space-separated terminals)."})

    def metadata_indices(self) -> tuple[int, ...] | None:
        if not self.metadata:
            return None
        parts = [x.strip() for x in self.metadata.split(",")]
        if not all(x.isdigit() for x in parts):
            raise MetacondError(f"--metadata takes comma-separated non-negative integers (e.g. 1,0), got {self.metadata!r}")
        return tuple(int(x) for x in parts)


def _parse(argv: list[str]) -> int:
    import numpy as np

    from metacond.config import parse_config

    from .grammar import resolve_grammar
    from .inference import PCFGInference

    seqs_cli = [a for a in argv if not a.startswith("--") and (argv.index(a) == 0 or not argv[argv.index(a) - 1].startswith("--"))]
    flags = [a for a in argv if a not in seqs_cli]
    (args,) = parse_config([ParseArgs], flags, prog="metacond pcfg parse",
                           description="CYK membership and exact log p(x) of sequences.\n\nExample:\n  " + EXAMPLES["parse"])
    g = resolve_grammar(args.grammar)
    seqs = [s.split() for s in seqs_cli]
    if args.file:
        from pathlib import Path

        if not Path(args.file).is_file():
            raise MetacondError(f"sequence file {args.file!r} does not exist")
        seqs += [line.split() for line in Path(args.file).read_text().splitlines() if line.strip()]
    if not seqs:
        raise MetacondError("no sequences given")
    meta = args.metadata_indices()
    inf = PCFGInference(g)
    acc = inf.accepts(seqs, meta)
    lp = inf.log_prob(seqs, meta)
    for s, a, l in zip(seqs, acc, lp):
        print(json.dumps({"length": len(s), "accepted": bool(a), "log_prob": None if not np.isfinite(l) else round(float(l), 6)}))
    return 0


if __name__ == "__main__":
    from metacond.cli import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond pcfg"))
