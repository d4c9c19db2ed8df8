"""``metacond eval``: run our lm-eval task families on a checkpoint and summarize them.

Example (CPU, a tiny model):
  metacond eval --model runs/loc-tiny --suite localnews --conditions none,full --mcq_data questions.jsonl \\
      --ppl_data runs/news/global/full/parquet/test.parquet --output_dir runs/loc-tiny/eval

Families: ``mcq`` (log-likelihood of each option text; --mcq_data), ``letter`` (lettered options in the
prompt, letters scored; --letter true), ``official`` (the reference work's prompt and metadata block;
--official true), ``gen`` (greedy answer, letter parsed; --generative true, add --apply_chat_template
true for instruction-tuned models) and ``ppl`` (regional perplexity with the metadata excluded from the
score; --ppl_data). Every question is asked under the 4 cyclic rotations of its options.

Writes ``eval_results.json`` (lm-eval's own results per task family, a flat continent × condition
summary that model cards read, per-country / per-continent scores with 95% bootstrap intervals, every
named scoring rule's accuracy averaged over option orders, and a position-bias table),
``eval_summary.md`` (tables) and ``eval_summary.png``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from metacond import MetacondError

from . import TASK_DIR
from .localnews.conditions import CONTINENTS, FAMILY, MCQ_CONDITIONS, PPL_CONDITIONS, QUESTION_FAMILIES
from .localnews.defaults import DEFAULT_URL_STYLE, body_budget, context_length
from .localnews.scoring import UNPARSED_RULES
from .results import BiasRow, EvalResults, ItemScore, RegionalRow, RuleRow, SummaryRow

CONDITIONS = MCQ_CONDITIONS
PPL_ONLY_CONDITIONS = tuple(c for c in PPL_CONDITIONS if c not in MCQ_CONDITIONS)  # the study's ablation templates


@dataclass
class EvalArguments:
    model: str | None = field(default=None, metadata={"help": "Checkpoint directory (model + tokenizer)."})
    suite: str = field(default="localnews", metadata={"help": "Task suite: localnews."})
    conditions: str = field(default="none,full", metadata={"help": f"Comma-separated metadata conditions: {', '.join(CONDITIONS)}."})
    mcq_data: str | None = field(default=None, metadata={"help": "Localized MCQ questions (the published format or our builder's): JSONL, a JSON list or parquet."})
    ppl_data: str | None = field(default=None, metadata={"help": "Held-out articles for regional perplexity (a news build's test parquet/JSONL)."})
    output_dir: str | None = field(default=None, metadata={"help": "Where to write the results (default: <model>/eval)."})
    generative: bool = field(default=False, metadata={"help": "Also run the generative MCQ family (localnews_gen) on --mcq_data."})
    letter: bool = field(default=False, metadata={"help": "Also run the letter-choice family (localnews_letter: lettered options in the prompt, letters scored)."})
    official: bool = field(default=False, metadata={"help": "Also run the reference work's protocol (localnews_official, conditions none and full)."})
    unparsed: str = field(default="wrong", metadata={"help": "Generated answers with no parsable letter: wrong (counted wrong) or exclude (left out, the reference's rule)."})
    url_style: str | None = field(default=None, metadata={"help": "URL style of the metadata block: host, meco or full (default: the model's training "
                                                                  "build's, else host; a value that contradicts the build is refused)."})
    apply_chat_template: bool = field(default=False, metadata={"help": "Wrap prompts in the tokenizer's chat template (instruction-tuned models)."})
    batch_size: int = field(default=16, metadata={"help": "Batch size of log-likelihood requests."})
    bootstrap_iters: int = field(default=1000, metadata={"help": "Bootstrap resamples for the per-country/continent intervals."})
    limit: int | None = field(default=None, metadata={"help": "At most this many questions/articles per continent and condition, the first of "
                                                               "each continent in file order (quick checks; the tasks' per_continent_limit)."})
    max_body_bytes: int | None = field(default=None, metadata={"help": "Cut perplexity articles to this many UTF-8 bytes (default: the "
                                                                       "context length minus 256, at least 256)."})

    def __post_init__(self) -> None:
        if not self.model:
            raise MetacondError("--model is required")
        if self.suite != "localnews":
            raise MetacondError(f"unknown suite {self.suite!r}; choose from localnews")
        bad = [c for c in self.condition_list if c not in CONDITIONS + PPL_ONLY_CONDITIONS]
        if bad:
            raise MetacondError(f"unknown condition {bad[0]!r}; choose from {', '.join(CONDITIONS + PPL_ONLY_CONDITIONS)}")
        if not self.mcq_data and not self.ppl_data:
            raise MetacondError("give --mcq_data and/or --ppl_data")
        for flag in ("generative", "letter", "official"):
            if getattr(self, flag) and not self.mcq_data:
                raise MetacondError(f"--{flag} needs --mcq_data")
        from metacond.data_builders.news.metadata import URL_STYLES

        if self.url_style is not None and self.url_style not in URL_STYLES:
            raise MetacondError(f"unknown url_style {self.url_style!r}; choose from {', '.join(URL_STYLES)}")
        if self.unparsed not in UNPARSED_RULES:
            raise MetacondError(f"unknown unparsed rule {self.unparsed!r}; choose from {', '.join(UNPARSED_RULES)}")
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


def run_eval(args: EvalArguments) -> EvalResults:
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from metacond.modeling.summary import trained_setting

    from .regional import regional_rows

    assert args.model is not None  # __post_init__ requires it
    url_style = trained_setting(args.model, "url_style", args.url_style, "url_style", DEFAULT_URL_STYLE)
    model, tok = load_model(args.model)
    if args.apply_chat_template and not getattr(tok, "chat_template", None):
        raise MetacondError(f"--apply_chat_template: the tokenizer in {args.model} has no chat template (instruction-tune it first, e.g. metacond sft)")
    max_len = context_length(args.model, model.config)
    body_budget(args.max_body_bytes, max_len)  # the tasks decide the same from the model (defaults.py); checked here for one line
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size, add_bos_token=True, max_length=max_len)
    families = []
    if args.mcq_data:
        families += [(f, args.mcq_data) for f, on in (("mcq", True), ("letter", args.letter), ("official", args.official), ("gen", args.generative)) if on]
    if args.ppl_data:
        families.append(("ppl", args.ppl_data))
    raw: dict[str, Any] = {}
    summary: list[SummaryRow] = []
    regional: list[RegionalRow] = []
    scoring: list[RuleRow] = []
    bias: list[BiasRow] = []
    items: list[ItemScore] = []
    for fam, data in families:
        metric = FAMILY[fam].summary_metric
        if fam == "gen" and args.unparsed == "exclude":
            metric = "acc_exclude"
        conds = [c for c in args.condition_list if c in FAMILY[fam].conditions]
        if not conds:
            continue
        if not _continents_in(data, fam):
            raise MetacondError(f"{data} has no rows from {', '.join(CONTINENTS)}")
        # What the lm-eval CLI hands the tasks as model_args: the tasks read the tokenizer and defaults from the model.
        meta = {"data_file": str(Path(data).resolve()), "pretrained": str(args.model), "max_body_bytes": args.max_body_bytes, "url_style": args.url_style,
                "per_continent_limit": args.limit}
        # Our tasks only: indexing lm-eval's thousands of built-in YAMLs took ~10 s per family.
        tm = TaskManager(include_defaults=False, include_path=str(TASK_DIR / "localnews"), metadata=meta)
        lm.add_bos_token = fam != "official"  # the reference scores its prompt without a BOS
        try:
            res = lm_eval.simple_evaluate(model=lm, tasks=[f"localnews_{fam}_{c}" for c in conds], task_manager=tm, bootstrap_iters=args.bootstrap_iters,
                                          log_samples=True, apply_chat_template=args.apply_chat_template if fam in ("gen", "official") else False)
        finally:
            lm.add_bos_token = True
        raw[fam] = {"results": res["results"], "n-samples": res.get("n-samples"), "versions": res.get("versions"), "data_file": str(data)}
        for c in conds:
            task = f"localnews_{fam}_{c}"
            samples = res["samples"].get(task, [])
            if not samples:
                continue
            rows = [RegionalRow(**r) for r in regional_rows(fam, c, samples, lm if fam == "ppl" else None, iters=args.bootstrap_iters, metric=metric)]
            regional += rows
            items += item_records(fam, c, samples)
            if fam in QUESTION_FAMILIES:
                sc, pb = rule_tables(fam, c, samples, args.unparsed)
                scoring += sc
                bias += pb
            summary += [SummaryRow(fam, c, r.key, metric, r.value, ci_low=r.ci_low, ci_high=r.ci_high, n=r.n) for r in rows
                        if r.level == "continent" and r.metric == metric]
            g = res["results"].get(task, {})
            if g.get(f"{metric},none") is not None:
                summary.append(SummaryRow(fam, c, "all", metric, g[f"{metric},none"], stderr=g.get(f"{metric}_stderr,none"), n=len(samples)))
    out = Path(args.output_dir or Path(args.model) / "eval")
    out.mkdir(parents=True, exist_ok=True)
    results = EvalResults(model=str(args.model), suite=args.suite, conditions=args.condition_list, url_style=url_style, unparsed=args.unparsed,
                          lm_eval=raw, summary=summary, regional=regional, scoring_rules=scoring, position_bias=bias,
                          bootstrap_iters=args.bootstrap_iters, items=items)
    results.save(out)
    (out / "eval_summary.md").write_text(render_summary(summary, args.condition_list, regional) + render_rules(scoring, bias))
    plot_summary(summary, args.condition_list, out / "eval_summary.png")
    return results


def item_records(fam: str, condition: str, samples: list[dict[str, Any]]) -> list[ItemScore]:
    """One record per article (ppl: nats of the body and its bytes) or per question (accuracy averaged over its option
    orders), keyed so that two models evaluated on the same data file pair item by item."""

    if fam == "ppl":
        return [ItemScore(fam, condition, str(s["doc"]["article"]), s["doc"]["continent"], s["doc"]["country"], nll=-float(s["nll_sum"]),
                          bytes=float(s["doc"]["body_bytes"])) for s in samples]
    return [ItemScore(fam, condition, str(s["doc"]["qid"]), s["doc"]["continent"], s["doc"]["country"], acc=float(s["acc"]), orders=len(s["doc"]["orders"]))
            for s in samples]


def rule_tables(fam: str, condition: str, samples: list[dict[str, Any]], unparsed: str = "wrong") -> tuple[list[RuleRow], list[BiasRow]]:
    """Every scoring rule of a question family: accuracy over (question, order) pairs — each question's accuracy averaged
    over its orders — and its position-bias rows."""
    from .localnews.questions import rule_predictions
    from .localnews.scoring import RULES_OF_FAMILY, accuracy, position_bias

    n_opts = max(len(s["doc"]["options"]) for s in samples)
    rows: list[RuleRow] = []
    bias: list[BiasRow] = []
    for rule in RULES_OF_FAMILY[fam]:
        pairs = [p for s in samples for p in rule_predictions(s["doc"], s["filtered_resps"], rule)]
        preds, golds = [p for p, _ in pairs], [g for _, g in pairs]
        row = RuleRow(fam, condition, rule, accuracy(preds, golds, unparsed if rule == "generative" else "wrong"), len(samples),
                      len(pairs) // max(1, len(samples)))
        if rule == "generative":
            row.unparsed, row.unparsed_rule = sum(p is None for p in preds) / len(preds), unparsed
            row.acc_unparsed_wrong, row.acc_unparsed_excluded = accuracy(preds, golds, "wrong"), accuracy(preds, golds, "exclude")
        rows.append(row)
        bias += [BiasRow(fam, condition, rule, **b) for b in position_bias(preds, golds, n_opts)]
    return rows, bias


def render_rules(scoring: list[RuleRow], bias: list[BiasRow]) -> str:
    """Markdown: accuracy under each named scoring rule, and where the gold answer sat versus where the model answered."""
    if not scoring:
        return ""
    lines = ["## Localized MCQ by scoring rule (accuracy averaged over the 4 cyclic option orders)", "",
             "| family | condition | rule | accuracy | questions | unparsed |", "|---|---|---|---|---|---|"]
    for r in scoring:
        un = f"{r.unparsed:.3f} (counted {r.unparsed_rule})" if r.unparsed is not None else "—"
        lines.append(f"| {r.family} | {r.condition} | {r.rule} | {r.acc:.4f} | {r.questions} | {un} |")
    lines += ["", "## Position bias (accuracy when the gold answer is in a slot; share of answers given in that slot)", "",
              "| family | condition | rule | slot | gold here | accuracy when gold here | choice rate |", "|---|---|---|---|---|---|---|"]
    for b in bias:
        acc = "—" if b.acc_when_gold_here != b.acc_when_gold_here else f"{b.acc_when_gold_here:.3f}"
        lines.append(f"| {b.family} | {b.condition} | {b.rule} | {b.position} | {b.n_gold} | {acc} | {b.choice_rate:.3f} |")
    return "\n".join(lines) + "\n"


def _continents_in(data: str, fam: str) -> list[str]:
    """The study continents the tasks will find in ``data``: from each row's country, as the task loaders decide
    (a row's own ``continent`` label is not read: the gold release says 'North America' for Jamaica)."""
    from metacond.eval_tasks.localnews.utils import _read_articles, continent_of_row, load_questions

    p = Path(data)
    if fam == "ppl":
        have = {continent_of_row(r) for r in _read_articles(str(p.resolve()), p.stat().st_mtime)}
    else:
        rows, _ = load_questions(data)
        have = {r["continent"] for r in rows}
    return [k for k in CONTINENTS if k in have]


def _fmt(r: SummaryRow | RegionalRow) -> str:
    if r.ci_low is None or r.ci_high is None or r.ci_low != r.ci_low:
        return f"{r.value:.4f}"
    return f"{r.value:.4f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"


def render_summary(summary: list[SummaryRow], conditions: list[str], regional: list[RegionalRow] | None = None) -> str:
    lines = []
    for fam in FAMILY:
        rows = [r for r in summary if r.family == fam]
        if not rows:
            continue
        cell = {(r.continent, r.condition): r for r in rows}
        lines += [f"## {FAMILY[fam].title}", "", "| continent | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
        for k in (*CONTINENTS, "all"):
            if any((k, c) in cell for c in conditions):
                lines.append(f"| {k} | " + " | ".join(_fmt(cell[(k, c)]) if (k, c) in cell else "—" for c in conditions) + " |")
        lines.append("")
    for fam in FAMILY:
        regs = [r for r in regional or [] if r.family == fam and r.level == "country" and r.metric == FAMILY[fam].country_metric]
        if not regs:
            continue
        by_key = {(r.key, r.condition): r for r in regs}
        keys = sorted({(r.continent, r.key) for r in regs})
        what = "accuracy" if fam != "ppl" else "token-level perplexity (metadata not scored)"
        lines += [f"## Per country: {what}, 95% bootstrap interval", "", "| country | continent | n | " + " | ".join(conditions) + " |",
                  "|---|---|---|" + "---|" * len(conditions)]
        for cont, key in keys:
            n = next(r.n for r in regs if r.key == key)
            lines.append(f"| {key} | {cont} | {n} | " + " | ".join(_fmt(by_key[(key, c)]) if (key, c) in by_key else "—" for c in conditions) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_summary(summary: list[SummaryRow], conditions: list[str], path: Path) -> None:
    from metacond.figures import pyplot

    plt = pyplot()
    import numpy as np

    fams = [f for f in FAMILY if any(r.family == f for r in summary)]
    fig, axes = plt.subplots(1, len(fams), figsize=(6 * len(fams), 3.6), dpi=110, squeeze=False)
    for ax, fam in zip(axes[0], fams):
        cell = {(r.continent, r.condition): r for r in summary if r.family == fam}
        x = np.arange(len(CONTINENTS))
        w = 0.8 / len(conditions)
        for i, c in enumerate(conditions):
            rs = [cell.get((k, c)) for k in CONTINENTS]
            vals = np.array([r.value if r else np.nan for r in rs])
            lo = np.array([r.ci_low if r and r.ci_low is not None else np.nan for r in rs])
            hi = np.array([r.ci_high if r and r.ci_high is not None else np.nan for r in rs])
            err = np.nan_to_num(np.stack([vals - lo, hi - vals]), nan=0.0)
            ax.bar(x + i * w - 0.4 + w / 2, vals, w, yerr=err, capsize=2, label=c)
        ax.set_xticks(x, CONTINENTS)
        ax.set_ylabel("accuracy" if fam != "ppl" else "bits per byte")
        ax.set_title(FAMILY[fam].panel + ", 95% CI")
        ax.legend(fontsize=7, title="metadata")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    from metacond.config import parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    (args,) = parse_config([EvalArguments], argv, prog="metacond eval", description=__doc__)
    results = run_eval(args)
    out = Path(args.output_dir or Path(args.model) / "eval")
    print(render_summary(results.summary, args.condition_list))
    print(f"results: {out / 'eval_results.json'}")
    return 0


if __name__ == "__main__":
    from metacond.cli import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond eval"))
