"""``metacond eval``: run our lm-eval task families on a checkpoint and summarize them.

Example (CPU, a tiny model):
  metacond eval --model runs/loc-tiny --suite localnews --conditions none,full --mcq_data questions.jsonl \\
      --ppl_data runs/news/global/full/parquet/test.parquet --output_dir runs/loc-tiny/eval

Writes ``eval_results.json`` (lm-eval's own results per task family plus a flat summary that model
cards read), ``eval_summary.md`` (continent × condition tables) and ``eval_summary.png``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from metacond import MetacondError

from . import TASK_DIR

CONDITIONS = ("none", "country", "continent", "url", "full")
CONTINENTS = ("africa", "america", "asia", "europe")


@dataclass
class EvalArguments:
    model: str = field(default=None, metadata={"help": "Checkpoint directory (model + tokenizer)."})
    suite: str = field(default="localnews", metadata={"help": "Task suite: localnews."})
    conditions: str = field(default="none,full", metadata={"help": f"Comma-separated metadata conditions: {', '.join(CONDITIONS)}."})
    mcq_data: str | None = field(default=None, metadata={"help": "Localized MCQ questions (published JSONL format or our builder's)."})
    ppl_data: str | None = field(default=None, metadata={"help": "Held-out articles for regional perplexity (a news build's test parquet/JSONL)."})
    output_dir: str | None = field(default=None, metadata={"help": "Where to write the results (default: <model>/eval)."})
    batch_size: int = field(default=16, metadata={"help": "Batch size of log-likelihood requests."})
    limit: int | None = field(default=None, metadata={"help": "At most this many documents per task (quick checks)."})

    def __post_init__(self) -> None:
        if not self.model:
            raise MetacondError("--model is required")
        if self.suite != "localnews":
            raise MetacondError(f"unknown suite {self.suite!r}; choose from localnews")
        bad = [c for c in self.condition_list if c not in CONDITIONS]
        if bad:
            raise MetacondError(f"unknown condition {bad[0]!r}; choose from {', '.join(CONDITIONS)}")
        if not self.mcq_data and not self.ppl_data:
            raise MetacondError("give --mcq_data and/or --ppl_data")
        for name in ("mcq_data", "ppl_data"):
            p = getattr(self, name)
            if p and not Path(p).is_file():
                raise MetacondError(f"--{name} {p!r} does not exist")

    @property
    def condition_list(self) -> list[str]:
        return [c.strip() for c in self.conditions.split(",") if c.strip()]


def load_model(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    if not p.is_dir():
        raise MetacondError(f"model directory {path!r} does not exist")
    if not any((p / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise MetacondError(f"model directory {path!r} has no tokenizer (tokenizer.json / tokenizer_config.json)")
    return AutoModelForCausalLM.from_pretrained(p), AutoTokenizer.from_pretrained(p)


def run_eval(args: EvalArguments) -> dict[str, Any]:
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    model, tok = load_model(args.model)
    max_len = int(getattr(model.config, "max_position_embeddings", 2048))
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size, add_bos_token=True, max_length=max_len)
    families = []
    if args.mcq_data:
        families.append(("mcq", args.mcq_data, [f"localnews_mcq_{c}" for c in args.condition_list], "acc,none"))
    if args.ppl_data:
        families.append(("ppl", args.ppl_data, [f"localnews_ppl_{c}" for c in args.condition_list], "bits_per_byte,none"))
    raw: dict[str, Any] = {}
    summary: list[dict[str, Any]] = []
    for fam, data, tasks, metric in families:
        tm = TaskManager(include_path=str(TASK_DIR / "localnews"), metadata={"data_file": str(Path(data).resolve())})
        res = lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=tm, bootstrap_iters=0, limit=args.limit)
        raw[fam] = {"results": res["results"], "n-samples": res.get("n-samples"), "versions": res.get("versions"), "data_file": str(data)}
        for c in args.condition_list:
            for k in CONTINENTS:
                r = res["results"].get(f"localnews_{fam}_{c}_{k}")
                if r and metric in r:
                    summary.append({"family": fam, "condition": c, "continent": k, "metric": metric.split(",")[0], "value": r[metric],
                                    "n": (res.get("n-samples") or {}).get(f"localnews_{fam}_{c}_{k}", {}).get("effective")})
            g = res["results"].get(f"localnews_{fam}_{c}")
            if g and metric in g:
                summary.append({"family": fam, "condition": c, "continent": "all", "metric": metric.split(",")[0], "value": g[metric]})
    out = Path(args.output_dir or Path(args.model) / "eval")
    out.mkdir(parents=True, exist_ok=True)
    payload = {"model": str(args.model), "suite": args.suite, "conditions": args.condition_list, "lm_eval": raw, "summary": summary}
    (out / "eval_results.json").write_text(json.dumps(payload, indent=1, default=str))
    (out / "eval_summary.md").write_text(render_summary(summary, args.condition_list))
    plot_summary(summary, args.condition_list, out / "eval_summary.png")
    return payload


def render_summary(summary: list[dict[str, Any]], conditions: list[str]) -> str:
    lines = []
    for fam, title in (("mcq", "Localized MCQ accuracy"), ("ppl", "Regional bits per byte (metadata not scored; lower is better)")):
        rows = [r for r in summary if r["family"] == fam]
        if not rows:
            continue
        cell = {(r["continent"], r["condition"]): r["value"] for r in rows}
        lines += [f"## {title}", "", "| continent | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
        for k in (*CONTINENTS, "all"):
            if any((k, c) in cell for c in conditions):
                lines.append(f"| {k} | " + " | ".join(f"{cell[(k, c)]:.4f}" if (k, c) in cell else "—" for c in conditions) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_summary(summary: list[dict[str, Any]], conditions: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fams = [f for f in ("mcq", "ppl") if any(r["family"] == f for r in summary)]
    fig, axes = plt.subplots(1, len(fams), figsize=(6 * len(fams), 3.6), dpi=110, squeeze=False)
    for ax, fam in zip(axes[0], fams):
        cell = {(r["continent"], r["condition"]): r["value"] for r in summary if r["family"] == fam}
        x = np.arange(len(CONTINENTS))
        w = 0.8 / len(conditions)
        for i, c in enumerate(conditions):
            ax.bar(x + i * w - 0.4 + w / 2, [cell.get((k, c), np.nan) for k in CONTINENTS], w, label=c)
        ax.set_xticks(x, CONTINENTS)
        ax.set_ylabel("accuracy" if fam == "mcq" else "bits per byte")
        ax.set_title("Localized MCQ" if fam == "mcq" else "Regional perplexity (metadata excluded)")
        ax.legend(fontsize=7, title="metadata")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    from metacond.config import parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    (args,) = parse_config([EvalArguments], argv, prog="metacond eval", description=__doc__)
    payload = run_eval(args)
    out = Path(args.output_dir or Path(args.model) / "eval")
    print(render_summary(payload["summary"], args.condition_list))
    print(f"results: {out / 'eval_results.json'}")
    return 0


if __name__ == "__main__":
    from metacond.main import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond eval"))
