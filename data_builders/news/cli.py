"""``metacond news``: build the localization study's datasets from a news corpus with URLs.

Subcommands:
  build     resolve countries, clean, split, and write experiment datasets with metadata templates
  mcq       build a localized multiple-choice benchmark (entity cloze) from held-out articles

Examples (CPU-sized):
  metacond news build --input news.jsonl --regions paper17 --experiments global region --templates full none --output_dir runs/news
  metacond news mcq --test_file runs/news/global/full/parquet/test.parquet --train_file runs/news/global/full/parquet/train.parquet --output runs/mcq.jsonl
"""

from __future__ import annotations

import json
import sys
from typing import Sequence

from metacond import MetacondError


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if argv[0] not in ("build", "mcq"):
        raise MetacondError(f"unknown news subcommand {argv[0]!r}; choose from build, mcq")
    from metacond.config import parse_config

    if argv[0] == "mcq":
        from .mcq import MCQBuildConfig, build_mcq

        (mcfg,) = parse_config([MCQBuildConfig], argv[1:], prog="metacond news mcq",
                               description="Build a localized MCQ benchmark (entity cloze).\n\nExample:\n  metacond news mcq --test_file test.parquet --output q.jsonl")
        rep = build_mcq(mcfg)
        print(json.dumps(rep, indent=1))
        if not mcfg.dry_run:
            print(f"questions: {mcfg.output}")
        return 0

    from .builder import NewsBuildConfig, build_news

    (cfg,) = parse_config([NewsBuildConfig], argv[1:], prog="metacond news build",
                          description="Build geo-tagged news datasets.\n\nExample:\n  metacond news build --input news.jsonl --regions paper17 --output_dir runs/news")
    rep = build_news(cfg)
    c = rep["counts"]
    print(f"build: {cfg.output_dir}  ({rep['wall_seconds']} s)")
    bad = c.get("bad_json_line", 0)
    print(f"  rows read {c.get('input_rows', 0) + bad}{f' ({bad} unparseable lines)' if bad else ''}, kept {c.get('kept', 0)}, "
          f"resolved fraction {rep['resolved_fraction']:.1%}")
    print("  dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(rep["dropped"].items(), key=lambda kv: -kv[1])))
    print("  per continent: " + ", ".join(f"{k} {v}" for k, v in rep["per_continent"].items()))
    print("  per country: " + ", ".join(f"{k} {v}" for k, v in rep["per_country"].items()))
    for name, e in rep["experiments"].items():
        pad = f" (packed blocks: {e['block_padding']:.1%} padding)" if "block_padding" in e else ""
        print(f"  {name}: " + ", ".join(f"{s} {n}" for s, n in e["splits"].items()) + pad)
        kept, dropped = e["continents"].get("train", {}), e.get("dropped", {}).get("train", {})
        print("    train kept " + (", ".join(f"{c} {n}" for c, n in sorted(kept.items())) or "none") +
              ("; dropped " + ", ".join(f"{c} {n}" for c, n in sorted(dropped.items())) if dropped else "; nothing dropped"))
    if rep.get("unused_continents"):
        print("  resolved but used by no experiment: " + ", ".join(f"{c} ({rep['per_continent'].get(c, 0)} articles)" for c in rep["unused_continents"]))
    for name, e in rep["experiments"].items():
        if e.get("empty_splits"):
            print(f"  warning: {name} has no {' / '.join(e['empty_splits'])} rows (too few articles for the split fractions)")
    print("  files: <experiment>/<template>/{hf,parquet,tokenizer}, tokenizer/, build_report.json, composition.png, README.md")
    return 0


if __name__ == "__main__":
    from metacond.cli import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond news"))
