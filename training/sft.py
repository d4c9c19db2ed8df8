"""``metacond sft``: instruction tuning with TRL's ``SFTTrainer``, full or LoRA (PEFT), completion-only loss.

Example (CPU, a tiny localization model and instructions derived from its news build's train split):
  metacond sft --config training/recipes/localization/sft/tiny-lora.yaml --model runs/loc-tiny \\
      --news_build runs/news/global/full --output_dir runs/loc-tiny-sft

Data: a local JSONL/JSON/parquet file or a Hub dataset name (``--dataset``) in the
instruction/input/output, messages or prompt/completion layout; or ``--news_build`` to derive an
instruction set from a news build's train split (``data_builders/news/instructions.py``). Every row
becomes a conversational prompt/completion pair, so the loss covers the answer only.
``--metadata_prefix true`` is the metadata-prefixed variant: the row's metadata block (the
pretraining template, e.g. ``URL: …\\nCOUNTRY: …\\nCONTINENT: …\\n\\n``) goes before the instruction.
A tokenizer without a chat template gets a plain-text one (no new tokens, ``<bos>`` first as in
pretraining). With LoRA (``--use_lora true``, all linear layers) the adapter is saved under
``adapter/`` and, by default, merged into a plain ``LlamaForCausalLM`` saved at the output directory.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from metacond import MetacondError

CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}"
                 "{% if m['role'] == 'system' %}### System:\n{{ m['content'] }}\n\n"
                 "{% elif m['role'] == 'user' %}### User:\n{{ m['content'] }}\n\n"
                 "{% elif m['role'] == 'assistant' %}### Assistant:\n{{ m['content'] }}{{ eos_token }}\n\n{% endif %}{% endfor %}"
                 "{% if add_generation_prompt %}### Assistant:\n{% endif %}")


@dataclass
class SFTArguments:
    model: str | None = field(default=None, metadata={"help": "Pretrained checkpoint directory (e.g. a metacond pretrain run)."})
    dataset: str | None = field(default=None, metadata={"help": "Instruction data: JSONL/JSON/parquet path or Hub dataset name."})
    dataset_split: str = field(default="train", metadata={"help": "Split of a Hub dataset."})
    news_build: str | None = field(default=None, metadata={"help": "A news build experiment dir (…/global/full) or train parquet: derive instructions from its train split."})
    news_tasks: list[str] = field(default_factory=lambda: ["country", "headline"], metadata={"help": "Derived tasks: country, headline (no entity cloze: the benchmark's task)."})
    max_examples: int | None = field(default=None, metadata={"help": "Use at most this many instruction rows."})
    metadata_prefix: bool = field(default=False, metadata={"help": "Metadata-prefixed variant: the row's metadata block before each instruction."})
    metadata_template: str | None = field(default=None, metadata={"help": "Template of the metadata prefix (default: the one the model pretrained "
                                                                          "on, from its training summary, else full; a contradicting value is refused)."})
    url_style: str | None = field(default=None, metadata={"help": "URL style of the metadata prefix: host, meco or full (default: the model's "
                                                                  "training build's, else host; a value that contradicts the build is refused)."})
    use_lora: bool = field(default=False, metadata={"help": "Train a LoRA adapter on all linear layers instead of the full model."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    merge_lora: bool = field(default=True, metadata={"help": "Merge the adapter and save a plain LlamaForCausalLM."})
    eval_fraction: float = field(default=0.0, metadata={"help": "Hold out this share of the rows (by a hash of the prompt) as an evaluation split: "
                                                                 "its loss is computed at the end (and every eval_steps with --eval_strategy steps)."})
    dry_run: bool = field(default=False, metadata={"help": "Load the model, build the rows, print counts and one rendered example; train nothing."})

    def __post_init__(self) -> None:
        if not self.model:
            raise MetacondError("--model is required (a pretrained checkpoint directory)")
        if not (self.dataset or self.news_build):
            raise MetacondError("give --dataset (instruction data) or --news_build (derive instructions from a news build's train split)")
        from metacond.data_builders.news.metadata import URL_STYLES

        if self.url_style is not None and self.url_style not in URL_STYLES:
            raise MetacondError(f"unknown url_style {self.url_style!r}; choose from {', '.join(URL_STYLES)}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise MetacondError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")


# ---------------------------------------------------------------------------------------------- data
def _read_rows(path: str, split: str) -> list[dict[str, Any]]:
    p = Path(path)
    if p.suffix in (".jsonl", ".json", ".parquet"):
        if not p.is_file():
            raise MetacondError(f"instruction data {path!r} does not exist")
        if p.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(p).to_pylist()
        text = p.read_text()
        if p.suffix == ".json" and text.lstrip().startswith("["):
            return json.loads(text)
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise MetacondError(f"{path}: line {i} is not valid JSON") from None
        return rows
    if p.exists():
        raise MetacondError(f"unsupported instruction file {path!r}: give .jsonl, .json or .parquet, or a Hub dataset name")
    import datasets

    try:
        return datasets.load_dataset(path, split=split).to_list()
    except Exception as e:  # hub errors come in many types; the user needs one line
        raise MetacondError(f"could not open dataset {path!r}: {str(e).splitlines()[0]}") from None


def _news_rows(build: str, tasks: list[str], max_rows: int | None) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    from metacond.data_builders.news.instructions import news_instructions

    p = Path(build)
    train = p if p.suffix == ".parquet" else p / "parquet" / "train.parquet"
    if not train.is_file():
        raise MetacondError(f"no train split at {train} (give a news build experiment dir such as runs/news/global/full)")
    have = set(pq.read_schema(train).names)
    cols = [c for c in ("title", "text", "country", "continent", "short_url", "url", "source_url") if c in have]  # source_url: builds since issue 13
    arts = pq.read_table(train, columns=cols).to_pylist()
    return news_instructions(arts, tasks, max_rows)


def to_conversation(row: dict[str, Any], line: int) -> tuple[dict[str, Any] | None, str | None]:
    """(prompt/completion messages, None) or (None, reason). Layouts: messages, instruction/input/output, prompt/completion."""
    if isinstance(row.get("messages"), list) and row["messages"]:
        msgs = row["messages"]
        if not all(isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") and isinstance(m.get("content"), str) for m in msgs):
            return None, f"row {line}: messages need role (system/user/assistant) and string content"
        if msgs[-1]["role"] != "assistant" or len(msgs) < 2:
            return None, f"row {line}: the last message must be the assistant's answer"
        return {"prompt": msgs[:-1], "completion": [msgs[-1]]}, None
    if "instruction" in row and "output" in row:
        if not isinstance(row["instruction"], str) or not isinstance(row["output"], str) or not row["output"].strip():
            return None, f"row {line}: instruction and output must be non-empty strings"
        user = row["instruction"] + (f"\n\n{row['input']}" if isinstance(row.get("input"), str) and row["input"].strip() else "")
        return {"prompt": [{"role": "user", "content": user}], "completion": [{"role": "assistant", "content": row["output"]}]}, None
    if "prompt" in row and "completion" in row:
        if not isinstance(row["prompt"], str) or not isinstance(row["completion"], str) or not row["completion"].strip():
            return None, f"row {line}: prompt and completion must be non-empty strings"
        return {"prompt": [{"role": "user", "content": row["prompt"]}], "completion": [{"role": "assistant", "content": row["completion"]}]}, None
    return None, f"row {line}: no messages, instruction/output or prompt/completion fields (has {', '.join(sorted(row)[:8])})"


def metadata_block(row: dict[str, Any], template: str = "full", url_style: str = "host") -> str | None:
    """The pretraining metadata block for a row with a country (code or name); None without one."""
    from metacond.data_builders.news import metadata

    if metadata.country_of(row) is None:
        return None
    return metadata.metadata_block(row, template, url_style)


def build_sft_dataset(args: SFTArguments) -> tuple[Any, dict[str, Any]]:
    import datasets

    if args.news_build:
        rows = _news_rows(args.news_build, args.news_tasks, args.max_examples)
    else:
        assert args.dataset is not None, "SFTArguments.__post_init__ requires --dataset or --news_build"
        rows = _read_rows(args.dataset, args.dataset_split)
    if args.max_examples is not None:
        rows = rows[: args.max_examples]
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    unprefixed = 0
    tasks: Counter[str] = Counter()
    if args.metadata_prefix:
        from metacond.modeling.summary import trained_setting

        assert args.model is not None, "SFTArguments.__post_init__ requires --model"
        url_style = trained_setting(args.model, "url_style", args.url_style, "url_style", "host")
        template = trained_setting(args.model, "template", args.metadata_template, "metadata_template", "full")
        if template == "none":
            raise MetacondError(f"--metadata_prefix: {args.model} pretrained without metadata (template none); choose one with --metadata_template")
    for i, r in enumerate(rows, 1):
        conv, why = to_conversation(r, i) if isinstance(r, dict) else (None, f"row {i}: not an object")
        if conv is None:
            assert why is not None, "to_conversation gives a reason with every rejected row"
            problems.append(why)
            continue
        tasks[str(r.get("task", "rows"))] += 1
        if args.metadata_prefix:
            block = metadata_block(r, template, url_style)
            if block is None:
                unprefixed += 1
            else:
                first_user = next(m for m in conv["prompt"] if m["role"] == "user") if any(m["role"] == "user" for m in conv["prompt"]) else None
                if first_user is not None:
                    first_user["content"] = block + first_user["content"]
        out.append(conv)
    if not out:
        raise MetacondError(f"no usable instruction rows ({len(problems)} skipped: {'; '.join(problems[:3])})")
    if args.news_build:
        for t in args.news_tasks:
            tasks.setdefault(t, 0)  # a task the build cannot feed (e.g. headlines without titles) shows as 0
    info = {"rows": len(out), "skipped": len(problems), "skipped_examples": problems[:10], "without_metadata_prefix": unprefixed,
            "source": args.news_build or args.dataset, "metadata_prefix": args.metadata_prefix, "rows_per_task": dict(tasks)}
    return datasets.Dataset.from_list(out), info


def split_eval(ds, fraction: float, seed: int = 0):
    """(train, eval or None): rows whose prompt hashes below ``fraction`` are held out (stable under reordering)."""
    if fraction <= 0:
        return ds, None
    from metacond.data_builders.news.collect import hash01

    held = [hash01(json.dumps(p, sort_keys=True), seed) < fraction for p in ds["prompt"]]
    ev = [i for i, h in enumerate(held) if h]
    if not ev or len(ev) == len(held):
        raise MetacondError(f"eval_fraction {fraction} leaves {len(ev)} of {len(held)} rows for evaluation: choose another share")
    return ds.select([i for i, h in enumerate(held) if not h]), ds.select(ev)


# ---------------------------------------------------------------------------------------------- training
def load_base(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    if not (p / "config.json").is_file():
        raise MetacondError(f"{path!r} is not a model directory (no config.json)")
    if not any((p / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        raise MetacondError(f"model directory {path!r} has no tokenizer")
    tok = AutoTokenizer.from_pretrained(p)
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHAT_TEMPLATE
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(p)
    model.config.use_cache = False
    return model, tok


def lora_config(args: SFTArguments):
    from peft import LoraConfig

    return LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules="all-linear", task_type="CAUSAL_LM")


def run_sft(args: SFTArguments, sft_config) -> dict[str, Any]:
    from trl import SFTTrainer

    assert args.model is not None, "SFTArguments.__post_init__ requires --model"
    out = Path(sft_config.output_dir)
    model, tok = load_base(args.model)
    ds, info = build_sft_dataset(args)
    ds, eval_ds = split_eval(ds, args.eval_fraction, sft_config.seed)
    info["train_rows"], info["eval_rows"] = len(ds), len(eval_ds) if eval_ds is not None else 0
    if args.dry_run:
        example = tok.apply_chat_template(ds[0]["prompt"] + ds[0]["completion"], tokenize=False)
        return {"status": "dry_run", "output_dir": str(out), "summary": {"data": info, "example": example}}
    sft_config.completion_only_loss = True
    sft_config.push_to_hub = False
    if sft_config.max_length is None or sft_config.max_length > model.config.max_position_embeddings:
        sft_config.max_length = int(model.config.max_position_embeddings)
    if sft_config.max_steps and sft_config.max_steps > 0 and sft_config.logging_steps >= 1 and sft_config.logging_steps > sft_config.max_steps:
        sft_config.logging_steps = sft_config.max_steps  # a run shorter than the logging interval would log no loss at all
    t0 = time.time()
    trainer = SFTTrainer(model=model, args=sft_config, train_dataset=ds, eval_dataset=eval_ds, processing_class=tok,
                         peft_config=lora_config(args) if args.use_lora else None)
    result = trainer.train()
    eval_loss = float(trainer.evaluate()["eval_loss"]) if eval_ds is not None else None
    wall = time.time() - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trained = trainer.model
    if args.use_lora:
        trained.save_pretrained(out / "adapter")
        if args.merge_lora:
            trained = trained.merge_and_unload()
    if not args.use_lora or args.merge_lora:
        trained.config.use_cache = True
        trained.save_pretrained(out)
    tok.save_pretrained(out)
    summary = {"base_model": args.model, "data": info, "lora": {"r": args.lora_r, "alpha": args.lora_alpha, "dropout": args.lora_dropout,
                                                                 "merged": args.merge_lora} if args.use_lora else None,
               "losses": losses, "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
               "eval_loss": eval_loss, "train_metrics": result.metrics, "wall_time_seconds": round(wall, 2), "chat_template": tok.chat_template}
    (out / "sft_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    from .plots import plot_loss_curve

    plot_loss_curve(trainer.state.log_history, out / "loss_curve.png", title=f"instruction tuning: {Path(args.model).name}")
    return {"status": "finished", "output_dir": str(out), "summary": summary}


def parse_args(argv: Sequence[str]):
    from trl import SFTConfig

    from metacond.config import parse_config

    argv = list(argv)
    if not any(a.startswith("--bf16") for a in argv):
        import torch

        # TRL defaults to bf16, which TrainingArguments refuses without a GPU; a recipe may still set it.
        argv = ["--bf16", "true" if torch.cuda.is_available() else "false"] + argv
    return parse_config([SFTArguments, SFTConfig], argv, prog="metacond sft", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, cfg = parse_args(argv)
    res = run_sft(args, cfg)
    s = res["summary"]
    d = s["data"]
    print(f"rows: {d['train_rows']} train, {d['eval_rows']} eval; per task: " + ", ".join(f"{k} {v}" for k, v in d["rows_per_task"].items()))
    if d["skipped"]:
        print(f"skipped {d['skipped']} row(s): " + "; ".join(d["skipped_examples"][:3]) + (" ..." if d["skipped"] > 3 else ""))
    if d.get("without_metadata_prefix"):
        print(f"{d['without_metadata_prefix']} row(s) have no country: trained without a metadata prefix")
    if res["status"] == "dry_run":
        print("dry run: nothing trained. First example as the model will see it:\n" + s["example"])
        return 0
    f4 = lambda x: "not logged" if x is None else f"{x:.4f}"  # noqa: E731
    ev = f", eval loss {f4(s['eval_loss'])}" if s.get("eval_loss") is not None else ""
    print(f"{res['status']}: {res['output_dir']} (loss {f4(s['first_loss'])} -> {f4(s['last_loss'])}{ev}, {s['wall_time_seconds']} s; loss_curve.png)")
    return 0


if __name__ == "__main__":
    from metacond.cli import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond sft"))
