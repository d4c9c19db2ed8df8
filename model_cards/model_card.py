"""Model cards from run directories: ``huggingface_hub.ModelCard`` with ``ModelCardData``.

Reads what a run leaves behind — ``config.json``, ``training_summary.json`` (parameters, tokens seen,
hardware, wall time, recipe, metadata scheme), ``eval/eval_results.json`` (``metacond eval``) and a
PCFG study's ``results.json`` — and writes a card whose YAML header carries ``eval_results`` so the
scores appear as ``model-index`` on the Hub. Everything renders offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metacond import MetacondError
from metacond.eval_tasks.pcfg.results import PcfgStudyResults
from metacond.eval_tasks.results import EvalResults
from metacond.modeling.summary import TrainingSummary

CITATIONS = """- *Metadata Conditioned Large Language Models for Localization* (2025) — the geo-tagged news study whose
  experiment grid, metadata template and localized MCQ benchmark format this release follows.
- *When Does Metadata Conditioning (NOT) Work for Language Model Pre-Training? A Study with Context-Free
  Grammars* (2025) — the synthetic PCFG study.
- *Metadata Conditioning Accelerates Language Model Pre-training* (MeCo, 2025) — URL conditioning with a
  metadata-free cooldown."""


def _read_json(p: Path) -> dict[str, Any] | None:
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise MetacondError(f"{p} is not valid JSON ({e.msg} at line {e.lineno})") from None


def _loss_line(summary) -> str:
    """The last logged training loss and the mean over the last 10% of logged steps (the run mean hides the end of training)."""
    losses = summary.train_losses()
    if not losses:
        return "not logged"
    run_mean = "" if summary.final_train_loss is None else f"; whole-run mean {summary.final_train_loss:.4f}"
    return f"{losses[-1]:.4f} (last logged); {summary.final_window_loss(0.1):.4f} (mean of the last 10% of logged steps{run_mean})"


def _validation_line(summary) -> str:
    v = summary.validation
    if not v:
        return "not computed (the dataset has no validation split, or --final_eval false)"
    return f"{v['loss']:.4f} nats per scored token on {v['examples']:,} `{v['split']}` rows, at the end of training"


def localnews_eval_results(results: EvalResults, dataset_name: str = "localnews"):
    """One EvalResult per (family, condition, continent) row of ``metacond eval``'s summary."""
    from huggingface_hub import EvalResult

    from metacond.eval_tasks.localnews.conditions import FAMILY

    out = []
    for r in results.summary:
        fam, metric = r.family, r.metric
        # Every family `metacond eval` writes (mcq, letter, official, gen, ppl) is named by its one title.
        kind = ("text-generation" if fam == "ppl" else "multiple-choice", FAMILY[fam].title if fam in FAMILY else f"localnews {fam}")
        # dataset_type is a name, not a Hub id: the questions file is the user's own unless they pushed it.
        out.append(EvalResult(task_type=kind[0], task_name=kind[1], dataset_type=dataset_name, dataset_name=f"{dataset_name} ({r.continent})",
                              dataset_config=f"{fam}-{r.condition}-{r.continent}", dataset_split="test",
                              metric_type="accuracy" if metric == "acc" else metric, metric_name=f"{metric} ({r.condition} metadata)",
                              metric_value=float(r.value)))
    return out


def pcfg_eval_results(results: PcfgStudyResults, depth: int, seed: int | None = None):
    """Loss with masks / with metadata and full-length probing accuracy for the model trained at ``depth`` (the run with
    training seed ``seed`` when the study trained several; default its first)."""
    from huggingface_hub import EvalResult

    if str(depth) not in results.models:
        raise MetacondError(f"the PCFG results have no model for D_M={depth} (have {', '.join(results.models)})")
    runs = results.runs(depth)
    m = next((r for r in runs if seed is not None and r.training_seed == seed), runs[0])
    base = dict(task_type="text-generation", dataset_type="metacond/pcfg", dataset_name=f"PCFG {results.grammar_label}", dataset_split="test")
    out = []
    for cond, loss in (("masked", m.masked), ("metadata", m.metadata)):
        if loss is not None:
            out.append(EvalResult(task_name="Next-token loss on terminals (nats/token)", dataset_config=f"loss-{cond}", metric_type="loss",
                                  metric_name=f"loss ({'masked prefix' if cond == 'masked' else 'true metadata prefix'})",
                                  metric_value=float(loss.model_loss), **base))
    full = [p for level in m.probe_levels for p in level if p is not None and p.L == "full"]
    if full:
        out.append(EvalResult(task_name="Linear probe of the latent rule-set indices (full sequence)", dataset_config="probing-full",
                              metric_type="accuracy", metric_name="probing accuracy, mean over levels",
                              metric_value=sum(p.test_accuracy for p in full) / len(full), **base))
    return out


def _metadata_section(summary: TrainingSummary, config: dict[str, Any], repo: str, run_dir: Path | None = None) -> str:
    scheme = summary.metadata_scheme
    mode = scheme.get("mode")
    load = f"""from transformers import AutoModelForCausalLM, AutoTokenizer

tok = AutoTokenizer.from_pretrained("{repo}")
model = AutoModelForCausalLM.from_pretrained("{repo}")
"""
    sched = (f"Metadata was shown on a fraction {scheme.get('fraction')} of training documents, per-field dropout "
             f"{scheme.get('field_dropout')}, cooldown without metadata for the last {scheme.get('cooldown_fraction')} of steps "
             f"(from step {scheme.get('cooldown_start_step')}).")
    if mode == "mask":
        depth = (scheme.get("builder") or {}).get("config", {}).get("metadata_depth", "D_M")
        return f"""Synthetic PCFG data: each sequence starts `<bos> m_0 … m_{{D-1}}`, one token per grammar level naming the
rule-set variant chosen there (`<m{{level}}_{{j}}>`); the first D_M = {depth} slots show the true variant on
metadata-bearing sequences, the rest are `<mask>`; the loss covers terminals and `<eos>` only. {sched}

```python
import torch
{load}
# Condition on level-0 variant 1 and level-1 variant 0, leave the rest masked, then sample terminals.
depth = sum(1 for t in tok.get_vocab() if t.startswith("<m") and t.endswith("_0>"))
prefix = ["<bos>", "<m0_1>", "<m1_0>"] + ["<mask>"] * (depth - 2)
ids = torch.tensor([tok.convert_tokens_to_ids(prefix)])
print(tok.decode(model.generate(ids, max_new_tokens=64, do_sample=True)[0]))
# Without metadata: every slot masked.
ids = torch.tensor([tok.convert_tokens_to_ids(["<bos>"] + ["<mask>"] * depth)])
print(tok.decode(model.generate(ids, max_new_tokens=64, do_sample=True)[0]))
```"""
    template = (scheme.get("builder") or {}).get("template", "full")
    with_meta, without, fmt = _example_prompts(summary, run_dir)
    return f"""Text documents are prefixed with a metadata block rendered by template `{template}` (the format of the build it
was trained on; the first training document starts):

```
{fmt}
```

The block is never scored (labels -100); documents without metadata start at `{without.strip()}`. {sched}

```python
{load}
with_meta = {with_meta!r}
without = {without!r}
for prompt in (with_meta, without):
    ids = tok(prompt, return_tensors="pt")  # the tokenizer adds <bos>, as in training
    out = model.generate(**ids, max_new_tokens=60, do_sample=True, top_p=0.9)
    print(tok.decode(out[0], skip_special_tokens=True))
```"""


def _example_prompts(summary: TrainingSummary, run_dir: Path | None) -> tuple[str, str, str]:
    """(prompt with metadata, prompt without, the first training document's opening) from the build the model read: its
    own template, formats and first row, so the example starts as the training documents do (``CONTENT:`` on a
    corpus without titles). Falls back to the full template's layout when the build is not on this machine."""
    fallback = ("URL: punchng.com\nCOUNTRY: ng\nCONTINENT: africa\n\nTITLE: ", "TITLE: ",
                "URL: <host, e.g. punchng.com>\nCOUNTRY: <ISO alpha-2, lower case, e.g. ng>\nCONTINENT: <africa | america | asia | europe>\n\n"
                "TITLE: <title>\n\nCONTENT: <article>")
    src = Path(str(summary.data.get("dataset") or ""))
    train = src / "parquet" / "train.parquet"
    if run_dir is None or not train.is_file():
        return fallback
    try:
        import pyarrow.parquet as pq

        from metacond.eval_tasks.localnews.defaults import trained_template, url_style
        from metacond.eval_tasks.localnews.utils import TOKEN_COLUMNS, split_article

        meta = {"pretrained": str(run_dir)}
        cols = [c for c in pq.read_schema(train).names if c not in TOKEN_COLUMNS]
        row = pq.ParquetFile(train).read_row_group(0, columns=cols).slice(0, 1).to_pylist()[0]
        # The evaluation tasks' own split: the metadata block and the body's leading marker are the prompt.
        with_meta, body, _ = split_article(row, trained_template(meta), url_style(meta))
        without = split_article(row, "none")[0]
    except (MetacondError, OSError, KeyError, IndexError, ValueError):
        return fallback
    opening = with_meta + body[:80] + ("…" if len(body) > 80 else "")
    return with_meta + " ", without + " ", opening


def _eval_tables(ev: EvalResults | None, pcfg_rows: list) -> str:
    parts = []
    if ev is not None and ev.summary:
        from metacond.eval_tasks.run_eval import render_summary

        parts.append(render_summary(ev.summary, ev.conditions, ev.regional).replace("## ", "### "))
    if pcfg_rows:
        parts.append("### PCFG evaluations\n\n| evaluation | metric | value |\n|---|---|---|\n" +
                     "\n".join(f"| {r.task_name} | {r.metric_name} | {r.metric_value:.4f} |" for r in pcfg_rows))
    return "\n\n".join(parts) if parts else "No evaluation results were found next to this run (run `metacond eval` or `metacond pcfg-study`)."


def _pcfg_rows(summary: TrainingSummary, pcfg_results: str | Path | None, pcfg_depth: int | None) -> list:
    """The PCFG study's results for the D_M this run was trained with (from its build config unless given)."""
    if not pcfg_results:
        return []
    pr = PcfgStudyResults.load(pcfg_results)
    depth = pcfg_depth if pcfg_depth is not None else (summary.metadata_scheme.get("builder") or {}).get("config", {}).get("metadata_depth", 0)
    return pcfg_eval_results(pr, depth, summary.recipe.get("training", {}).get("seed"))


def _hyperparameter_rows(summary: TrainingSummary) -> str:
    tr = summary.recipe.get("training", {})
    keys = ("learning_rate", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2", "max_grad_norm",
            "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "bf16", "seed")
    return "\n".join(f"| {k} | {tr.get(k)} |" for k in keys if k in tr)


def _architecture(config: dict[str, Any]) -> str:
    rope = config.get("rope_theta", (config.get("rope_parameters") or {}).get("rope_theta"))
    return (f"`LlamaForCausalLM`, {config.get('num_hidden_layers')} layers, {config.get('num_attention_heads')} heads "
            f"({config.get('num_key_value_heads')} KV), hidden {config.get('hidden_size')}, MLP {config.get('intermediate_size')}, "
            f"RoPE θ={rope}, context {config.get('max_position_embeddings')}, vocabulary {config.get('vocab_size')}")


def _project_link() -> str:
    """metacond, linked to the project URL its package metadata declares (none today: no link rather than a placeholder)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("metacond").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    url = next((u.split(",", 1)[1].strip() for u in urls if "," in u), None)
    return f"[metacond]({url})" if url else "metacond"


def build_model_card(run_dir: str | Path, repo_id: str | None = None, license: str = "apache-2.0", eval_results: str | Path | None = None,
                     pcfg_results: str | Path | None = None, pcfg_depth: int | None = None, datasets: list[str] | None = None):
    """A ``ModelCard`` for a finished ``metacond pretrain`` run directory."""
    from huggingface_hub import ModelCard, ModelCardData

    run = Path(run_dir)
    config = _read_json(run / "config.json")
    if config is None or not (run / TrainingSummary.FILE).is_file():
        raise MetacondError(f"{run} is not a finished metacond run (needs config.json and training_summary.json)")
    summary = TrainingSummary.load(run)
    repo = repo_id or f"<user>/{run.name}"
    name = repo.split("/")[-1]
    ev_path = Path(eval_results) if eval_results else run / "eval" / EvalResults.FILE
    # A path the user names must exist (one line if not); the run's own eval/ folder is optional.
    ev = EvalResults.load(ev_path) if eval_results or ev_path.is_file() else None
    pcfg_rows = _pcfg_rows(summary, pcfg_results, pcfg_depth)
    results = (localnews_eval_results(ev) if ev is not None else []) + pcfg_rows
    mode = summary.metadata_scheme.get("mode")
    data = ModelCardData(license=license, library_name="transformers", pipeline_tag="text-generation", language=None if mode == "mask" else ["en"],
                         tags=["metacond", "metadata-conditioning", "llama"] + (["pcfg", "synthetic"] if mode == "mask" else ["localization", "news"]),
                         datasets=datasets, model_name=name if results else None, eval_results=results or None)
    tok = summary.tokens_seen
    hw = summary.hardware
    hyper = _hyperparameter_rows(summary)
    arch = _architecture(config)
    content = f"""---
{data.to_yaml()}
---

# {name}

A language model pretrained from scratch with **metadata conditioning** by
{_project_link()} ({'synthetic PCFG study' if mode == 'mask' else 'localization study on geo-tagged news'}).
It loads with plain `from_pretrained` — no `trust_remote_code`.

## Model details

| | |
|---|---|
| architecture | {arch} |
| parameters | {summary.model.get('parameters'):,} |
| tokens seen | {tok.get('input_tokens', 0):,} input tokens, {tok.get('scored_tokens', 0):,} scored (loss) tokens, {tok.get('examples', 0):,} documents |
| size preset | {summary.model.get('size')} |
| hardware | {hw.get('world_size', 1)} process(es); {hw.get('processor') or ''} {hw.get('gpu', '') or ''} {hw.get('platform', '')} |
| wall time | {summary.wall_time_seconds} s |
| training loss at the end | {_loss_line(summary)} |
| validation loss | {_validation_line(summary)} |

## Metadata scheme and how to condition at inference

{_metadata_section(summary, config, repo, run)}

## Training data

`{summary.data.get('dataset')}` (builder key `{summary.data.get('builder')}`, {summary.data.get('train_rows')} training rows).
{'Datasets on the Hub: ' + ', '.join(datasets) if datasets else ''}

## Training procedure

`metacond pretrain` (Hugging Face `Trainer`, padding-free packing with per-document position ids, loss only on
non-metadata tokens). Hyperparameters:

| setting | value |
|---|---|
{hyper}

## Evaluation

{_eval_tables(ev, pcfg_rows)}

## Limitations and biases

{'Synthetic data only: the model knows a probabilistic grammar, not language.' if mode == 'mask' else
 'Regional coverage follows the training corpus: English-language outlets of a fixed list of countries (the paper preset covers 17 countries on four continents, with far more documents from some than others). Country labels come from outlet tables and country-code domains, not from article content, so they are noisy; metadata can steer generations toward stereotyped regional content, and the model may state falsehoods about any region. Small models trained on CPU are for method checks, not for use.'}

## Citation

{CITATIONS}
"""
    return ModelCard(content)


def write_model_card(run_dir: str | Path, **kwargs) -> Path:
    card = build_model_card(run_dir, **kwargs)
    path = Path(run_dir) / "README.md"
    card.save(path)
    return path


@dataclass
class CardArguments:
    path: str | None = field(default=None, metadata={"help": "Run directory (metacond pretrain output)."})
    repo_id: str | None = field(default=None, metadata={"help": "Hub id used in the card's code examples."})
    license: str = field(default="apache-2.0", metadata={"help": "License in the card header."})
    eval_results: str | None = field(default=None, metadata={"help": "metacond eval output (default: <run>/eval/eval_results.json when present)."})
    pcfg_results: str | None = field(default=None, metadata={"help": "A PCFG study's results.json to report for this model."})
    pcfg_depth: int | None = field(default=None, metadata={"help": "Which D_M model of the study this run is (default: the run's metadata depth)."})
    datasets: list[str] = field(default_factory=list, metadata={"help": "Hub dataset ids the model was trained on."})

    def __post_init__(self) -> None:
        if not self.path:
            raise MetacondError("give the run directory: metacond card RUN_DIR")


def main(argv=None) -> int:
    """``metacond card RUN_DIR``: write README.md (a model card) into a finished run directory.

    Example:
      metacond card runs/loc-tiny --repo_id someone/loc-tiny
    """
    import sys

    from metacond.config import parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):
        argv = ["--path", argv[0]] + argv[1:]
    (a,) = parse_config([CardArguments], argv, prog="metacond card", description=main.__doc__ or "")
    path = write_model_card(a.path, repo_id=a.repo_id, license=a.license, eval_results=a.eval_results, pcfg_results=a.pcfg_results,
                            pcfg_depth=a.pcfg_depth, datasets=a.datasets or None)
    print(f"model card: {path}")
    return 0
