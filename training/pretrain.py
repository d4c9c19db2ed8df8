"""``metacond pretrain``: train a LlamaForCausalLM from scratch on builder output, with metadata schedules.

Example (CPU, ~1 minute):
  metacond pretrain --config training/recipes/pcfg/tiny/pretrain.yaml --output_dir runs/pcfg-tiny --max_steps 200

Multi-GPU (same command, same recipe):
  accelerate launch --config_file training/accelerate/ddp.yaml -m metacond.training.pretrain --config RECIPE
  torchrun --nproc_per_node 8 -m metacond.training.pretrain --config RECIPE
(``push_to_hub`` needs the command's publisher: launch ``-m metacond pretrain`` for a run that pushes.)

One run holds both MeCo stages: with ``cooldown_fraction: 0.1`` the last 10% of steps see the same
data without metadata while the learning-rate schedule continues. A run killed mid-way resumes from
its last checkpoint when the same command is run again; a finished run is left alone.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from transformers import TrainerCallback

from metacond import MetacondError

if TYPE_CHECKING:
    from .arguments import HubTarget, PretrainingRecipe
    from .trainer import MetacondTrainer

DESCRIPTION = __doc__

# Publishes a finished run directory to the Hub and says what it sent. The push writes a model card, which reads
# evaluation results: a layer above training, so the caller hands the publisher in (``metacond pretrain`` gives
# ``metacond.model_cards.push.publish_run``).
Publisher = Callable[[Path, "HubTarget"], dict[str, Any]]


def parse_args(argv: Sequence[str]) -> PretrainingRecipe:
    from metacond.config import parse_config

    from .arguments import DataArguments, MetadataArguments, ModelArguments, PretrainingArguments, PretrainingRecipe, RunArguments

    model, data, meta, run, train = parse_config([ModelArguments, DataArguments, MetadataArguments, RunArguments, PretrainingArguments], argv,
                                                 prog="metacond pretrain", description=DESCRIPTION)
    return PretrainingRecipe(model=model, data=data, metadata=meta, run=run, training=train)


def main(argv: Sequence[str] | None = None, publish: Publisher | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    result = run_pretraining(parse_args(argv), publish=publish)
    if result.get("status") == "dry_run":
        return 0
    if int(os.environ.get("RANK", "0")) == 0:  # one line per run, not per process
        print(f"{result['status']}: {result['output_dir']}")
    return 0


def _resolve_dataset(data_args) -> str:
    if data_args.dataset:
        return data_args.dataset
    if data_args.pcfg_grammar:
        from metacond.data_builders.pcfg.dataset import PCFGDataConfig

        cfg = PCFGDataConfig(grammar=data_args.pcfg_grammar, metadata_depth=data_args.pcfg_metadata_depth,
                             metadata_fraction=data_args.pcfg_metadata_fraction, train_size=data_args.pcfg_train_size,
                             validation_size=data_args.pcfg_validation_size, test_size=data_args.pcfg_test_size,
                             seed=data_args.pcfg_seed, bayes_sample=0)
        return str(_build_on_local_main_first(cfg))
    raise MetacondError("no training data: set 'dataset' or 'pcfg_grammar'")


def _build_on_local_main_first(cfg, timeout_s: float = 1800.0) -> Path:
    """Build the PCFG dataset on local rank 0 while the other ranks of a launch wait for its manifest, then load it.

    The process group does not exist yet (the Trainer makes it), so the others poll. Before this, every rank built
    the same cold cache folder at once and rank 1 stopped with "exists and is not a metacond PCFG dataset" while
    rank 0 was still writing it (the slow tier's 2-process kill test, when its cache was cold).
    """
    from metacond.data_builders.pcfg.dataset import build_pcfg_dataset, pcfg_dataset_dir
    from metacond.modeling.summary import BuildManifest

    if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1 and int(os.environ.get("LOCAL_RANK", "0")) > 0 and not cfg.overwrite:
        out, deadline = pcfg_dataset_dir(cfg), time.time() + timeout_s
        while not BuildManifest.exists(out):
            if time.time() > deadline:
                raise MetacondError(f"local rank {os.environ['LOCAL_RANK']}: {out} was not built by rank 0 within {timeout_s:.0f} s")
            time.sleep(0.5)
    return build_pcfg_dataset(cfg, progress=True)[1]


def _hardware(world_size: int) -> dict[str, Any]:
    import torch

    hw: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                          "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                          "world_size": world_size}
    if torch.cuda.is_available():
        hw["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return hw


@dataclass
class RunPlan:
    """What a run will do, decided before any weight exists (printed by --dry_run)."""

    out: Path
    max_steps: int
    global_batch: int
    world: int
    cooldown_step: int | None
    mode: str
    schedule: Any
    table: dict[str, Any]


def run_pretraining(recipe: PretrainingRecipe, callbacks: list | None = None, publish: Publisher | None = None) -> dict[str, Any]:
    """Programmatic entry point (tests pass extra callbacks): check, load, plan, build, train, write — in that order.
    ``publish``: what pushes the finished run when the recipe asks for ``push_to_hub``."""
    from .trainer import MetacondTrainer

    model_args, data_args, meta_args, run_args, train_args = recipe.model, recipe.data, recipe.metadata, recipe.run, recipe.training
    hub = recipe.hub_target()
    # The push goes through `metacond push` after the final save (one commit, card, secret checks); the Trainer's
    # own hub sync stays off so nothing talks to the Hub mid-run.
    train_args.push_to_hub = False
    out = _check_output(train_args, run_args)
    if out is None:
        return {"status": "already finished (pass --overwrite_output_dir to retrain)", "output_dir": train_args.output_dir}
    data, tokenizer = _load_data_and_tokenizer(model_args, data_args)
    plan = _plan(model_args, data_args, meta_args, train_args, data, tokenizer, out)
    if run_args.dry_run:
        return _dry_run(plan, model_args, tokenizer)
    if hub is not None and publish is None:
        raise MetacondError("push_to_hub: this entry point has no Hub publisher; run `metacond pretrain` (or `python -m metacond pretrain` "
                            "under a launcher), which pushes through `metacond push`")
    model = _build_model(model_args, tokenizer)
    train_ds, eval_ds, collator = _datasets(data, data_args, train_args, plan, tokenizer, model.config.max_position_embeddings, run_args.final_eval)
    resume = _prepare_output_dir(out, run_args, train_args)
    step_log = StepLog(out / "steps.jsonl")
    trainer = MetacondTrainer(model=model, args=train_args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator,
                              processing_class=tokenizer, callbacks=[step_log, *(callbacks or [])])
    step_log.trainer = trainer
    _check_distributed(train_args)
    t0 = time.time()
    train_output = trainer.train(resume_from_checkpoint=resume)
    wall = time.time() - t0
    validation = None
    if eval_ds is not None and run_args.final_eval:
        validation = {"loss": float(trainer.evaluate()["eval_loss"]), "examples": len(eval_ds), "split": data_args.eval_split}
    result = _write_final(trainer, model, tokenizer, plan, data, collator, train_output, wall, resume, recipe, validation)
    if hub is not None and publish is not None and trainer.is_world_process_zero():
        result["push"] = publish(out, hub)
    return result


def _check_output(train_args, run_args) -> Path | None:
    """The run directory, or None when the run is already finished."""
    from metacond.modeling.checkpoint import is_finished

    if not train_args.output_dir:
        raise MetacondError("output_dir is required")
    out = Path(train_args.output_dir)
    if train_args.resume_from_checkpoint and not Path(train_args.resume_from_checkpoint).is_dir():
        raise MetacondError(f"resume_from_checkpoint {train_args.resume_from_checkpoint!r} does not exist")
    if is_finished(out) and not run_args.overwrite_output_dir and not run_args.dry_run:
        return None
    return out


def _load_data_and_tokenizer(model_args, data_args):
    from transformers import AutoTokenizer

    from .data import load_training_data

    data = load_training_data(_resolve_dataset(data_args), data_args.train_split, data_args.eval_split, data_args.streaming, data_args.dataset_config)
    tok_path = model_args.tokenizer or (str(data.tokenizer_dir) if data.tokenizer_dir else None) or model_args.init_from
    if tok_path is None:
        raise MetacondError("no tokenizer: the dataset has none; pass --tokenizer DIR")
    if not Path(tok_path).is_dir():
        raise MetacondError(f"tokenizer directory {tok_path!r} does not exist")
    tokenizer = AutoTokenizer.from_pretrained(tok_path)
    if tokenizer.pad_token_id is None:
        raise MetacondError(f"tokenizer at {tok_path} has no pad token")
    return data, tokenizer


def _plan(model_args, data_args, meta_args, train_args, data, tokenizer, out: Path) -> RunPlan:
    """Steps, global batch, cooldown start and the metadata schedule (a function of the stream position alone)."""
    from metacond.modeling.sizes import count_parameters

    from .schedule import MetadataSchedule, cooldown_start_step

    world = max(1, train_args.world_size)
    global_batch = train_args.per_device_train_batch_size * train_args.gradient_accumulation_steps * world
    if train_args.max_steps and train_args.max_steps > 0:
        max_steps = train_args.max_steps
    elif data_args.streaming:
        raise MetacondError("streaming needs max_steps (the stream has no known length)")
    else:
        max_steps = math.ceil(len(data.train) * train_args.num_train_epochs / global_batch)
    if max_steps < 1:
        raise MetacondError("the run has no steps: raise max_steps or num_train_epochs")
    train_args.max_steps = max_steps
    cd_step = cooldown_start_step(max_steps, meta_args.cooldown_fraction)
    mode = meta_args.metadata_mode if meta_args.metadata_mode != "auto" else (data.info.metadata_mode if data.info else "remove")
    schedule = MetadataSchedule(fraction=meta_args.metadata_fraction, field_dropout=list(meta_args.metadata_field_dropout),
                                cooldown_start_position=None if cd_step is None else cd_step * global_batch, mode=mode,
                                mask_token_id=tokenizer.mask_token_id, seed=train_args.seed)
    n_params = count_parameters(model_args.model_size, len(tokenizer), model_args.tie_word_embeddings) if model_args.init_from is None else None
    table = {
        "dataset": data.source, "train_rows": None if data_args.streaming else len(data.train),
        "model_size": model_args.model_size if model_args.init_from is None else f"init_from {model_args.init_from}",
        "parameters": n_params, "vocab_size": len(tokenizer), "max_steps": max_steps, "global_batch_examples": global_batch,
        "world_size": world, "cooldown_start_step": cd_step, "metadata_mode": mode, "metadata_fraction": meta_args.metadata_fraction,
        "packing": data_args.packing, "block_size": data_args.block_size, "output_dir": str(out),
    }
    return RunPlan(out, max_steps, global_batch, world, cd_step, mode, schedule, table)


def _dry_run(plan: RunPlan, model_args, tokenizer) -> dict[str, Any]:
    from metacond.modeling.sizes import llama_config

    if model_args.init_from is None:
        llama_config(model_args.model_size, len(tokenizer))  # validates the size
    print(json.dumps({"dry_run": plan.table}, indent=1))
    return {"status": "dry_run", "plan": plan.table}


def _build_model(model_args, tokenizer):
    from transformers import AutoModelForCausalLM

    from metacond.modeling.checkpoint import build_model, check_vocab

    if model_args.init_from:
        if not Path(model_args.init_from).is_dir():
            raise MetacondError(f"init_from {model_args.init_from!r} does not exist")
        model = AutoModelForCausalLM.from_pretrained(model_args.init_from)
        check_vocab(model, tokenizer)
    else:
        model = build_model(model_args.model_size, tokenizer, seed=model_args.model_seed, max_position_embeddings=model_args.max_position_embeddings,
                            rope_theta=model_args.rope_theta, tie_word_embeddings=model_args.tie_word_embeddings,
                            attn_implementation=model_args.attn_implementation)
    # Packed rows rely on position_ids-derived masks, which transformers builds only without a KV cache.
    model.config.use_cache = False
    return model


def _datasets(data, data_args, train_args, plan: RunPlan, tokenizer, max_pos: int, final_eval: bool = False):
    """The scheduled training stream (the run's whole example order), the evaluation set and the collator."""
    from .collator import MetadataCollator
    from .data import ScheduledDataset, ScheduledIterable
    from .schedule import MetadataSchedule

    total_examples = plan.max_steps * plan.global_batch
    stream = ScheduledIterable if data_args.streaming else ScheduledDataset
    train_ds = stream(data.train, plan.schedule, total_examples, seed=train_args.seed)
    eval_ds = None
    if data.eval is not None and not data_args.streaming and len(data.eval) and (train_args.eval_strategy != "no" or final_eval):
        ev = data.eval.select(range(min(data_args.eval_examples, len(data.eval))))
        eval_ds = ScheduledDataset(ev, MetadataSchedule(mode=plan.mode, mask_token_id=tokenizer.mask_token_id), len(ev), shuffle=False)
    if data_args.block_size and data_args.block_size > max_pos:
        raise MetacondError(f"block_size {data_args.block_size} exceeds the model's max_position_embeddings {max_pos}")
    collator = MetadataCollator(pad_token_id=tokenizer.pad_token_id, packing=data_args.packing, block_size=data_args.block_size,
                                max_length=data_args.max_length or max_pos)
    return train_ds, eval_ds, collator


def _prepare_output_dir(out: Path, run_args, train_args) -> str | None:
    """Create (or wipe, with --overwrite_output_dir) the run directory; return the checkpoint to resume from."""
    from .checkpoints import checkpoint_problem, resume_checkpoint

    train_args.include_num_input_tokens_seen = "non_padding"
    if out.exists() and run_args.overwrite_output_dir:
        shutil.rmtree(out)
    needs_optimizer = not train_args.save_only_model
    resume = train_args.resume_from_checkpoint
    if resume is not None:
        why = checkpoint_problem(Path(resume), needs_optimizer)
        if why:
            raise MetacondError(f"resume_from_checkpoint {resume!r} cannot be resumed from ({why})")
    else:
        say = print if train_args.process_index == 0 else (lambda *a: None)
        resume = resume_checkpoint(out, strict=run_args.strict_resume, needs_optimizer=needs_optimizer, say=say)
    out.mkdir(parents=True, exist_ok=True)
    return resume


class StepLog(TrainerCallback):
    """Per-step record of examples, metadata and scored tokens (summed over processes) in ``steps.jsonl``.

    Records are buffered and written at every checkpoint and at the end: steps after the last
    checkpoint of a killed run are re-run on resume anyway. ``trainer`` is set right after the
    Trainer that owns this callback is built.
    """

    def __init__(self, path: Path):
        self.path = path
        self.trainer: MetacondTrainer | None = None
        self.buffer: list[str] = []

    def on_step_end(self, args, state, control, **kw):
        import torch

        tr = self.trainer
        rec = tr.examples_by_step.pop(state.global_step - 1, [0, 0])
        t = torch.stack([torch.as_tensor(rec[0]), torch.as_tensor(rec[1]), torch.as_tensor(tr.scored_tokens)]).to(torch.long)
        if tr.accelerator.num_processes > 1:
            t = tr.accelerator.reduce(t.to(tr.args.device), reduction="sum").cpu()
        tr.scored_tokens = 0
        if state.is_world_process_zero:
            self.buffer.append(json.dumps({"step": state.global_step, "examples": int(t[0]), "with_metadata": int(t[1]),
                                           "scored_tokens": int(t[2]), "input_tokens": int(state.num_input_tokens_seen)}))

    def flush(self):
        if self.buffer:
            with open(self.path, "a") as f:
                f.write("\n".join(self.buffer) + "\n")
            self.buffer = []

    def on_save(self, args, state, control, **kw):
        self.flush()

    def on_train_end(self, args, state, control, **kw):
        self.flush()


def _write_final(trainer, model, tokenizer, plan: RunPlan, data, collator, train_output, wall: float, resume, recipe: PretrainingRecipe,
                 validation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Gather the weights on every rank; on rank 0 write the summary, loss curve and final directory."""
    from metacond.modeling.checkpoint import finalize, staging_dir
    from metacond.modeling.summary import TrainingSummary

    model_args, data_args, meta_args, run_args, train_args = recipe.model, recipe.data, recipe.metadata, recipe.run, recipe.training
    out = plan.out
    tmp = staging_dir(out)
    if trainer.is_world_process_zero():
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    model.config.use_cache = True
    trainer.save_model(str(tmp))  # every rank: FSDP/DeepSpeed gather here
    if not trainer.is_world_process_zero():
        return {"status": "finished", "output_dir": str(out)}
    steps = _read_step_log(out / "steps.jsonl")
    history = trainer.state.log_history
    info = data.info
    summary = TrainingSummary(
        recipe={"model": vars(model_args), "data": vars(data_args), "metadata": vars(meta_args),
                "training": {k: v for k, v in train_args.to_dict().items() if not k.startswith("_") and "token" not in k}},
        model={"size": model_args.model_size, "init_from": model_args.init_from, "parameters": int(sum(p.numel() for p in model.parameters())),
               "config": model.config.to_diff_dict()},
        data={"dataset": data.source, "builder": info.key if info else None, "train_rows": plan.table["train_rows"]},
        tokens_seen={"input_tokens": int(trainer.state.num_input_tokens_seen), "scored_tokens": int(sum(s["scored_tokens"] for s in steps)),
                     "examples": int(sum(s["examples"] for s in steps))},
        metadata_scheme={"mode": plan.mode, "fraction": meta_args.metadata_fraction, "field_dropout": list(meta_args.metadata_field_dropout),
                         "cooldown_fraction": meta_args.cooldown_fraction, "cooldown_start_step": plan.cooldown_step,
                         "builder": {"config": info.config, "template": info.template, "metadata_mode": info.metadata_mode} if info else {},
                         "examples_with_metadata_by_step": [[s["step"], s["with_metadata"], s["examples"]] for s in steps]},
        loss_curve=[{k: h[k] for k in ("step", "loss", "eval_loss", "learning_rate", "num_input_tokens_seen") if k in h} for h in history
                    if "loss" in h or "eval_loss" in h],
        final_train_loss=next((h["train_loss"] for h in reversed(history) if "train_loss" in h), None),
        wall_time_seconds=round(wall, 2), train_metrics=train_output.metrics, resumed_from=resume, hardware=_hardware(plan.world),
        truncated_examples=collator.truncated, validation=validation,
    )
    if run_args.plot:
        from .plots import plot_loss_curve

        plot_loss_curve(history, tmp / "loss_curve.png", plan.cooldown_step, title=run_title(out, model_args, meta_args, info))
    finalize(out, tokenizer, summary, max_new_tokens=min(512, model.config.max_position_embeddings))
    return {"status": "finished", "output_dir": str(out), "summary": summary}


def run_title(out: Path, model_args, meta_args, info) -> str:
    """What the run is, in words: its directory name (dm5, tiny-global-meta, ...), size, data and metadata scheme
    (a build's cache hash says nothing to a reader)."""
    data = "" if info is None else (info.template or (f"PCFG {info.config['grammar']}" if "grammar" in info.config else ""))
    drop = meta_args.metadata_field_dropout
    shown = f"metadata slots shown: {sum(p == 0 for p in drop)}/{len(drop)}" if drop and set(drop) <= {0.0, 1.0} else f"metadata fraction {meta_args.metadata_fraction:g}"
    cool = f", cooldown {meta_args.cooldown_fraction:g}" if meta_args.cooldown_fraction else ""
    return f"{out.name}: {model_args.model_size}{', ' + data if data else ''}; {shown}{cool}"


def _check_distributed(train_args) -> None:
    """A launcher started several processes but the Trainer is not data-parallel: each would train its own copy."""
    import torch.distributed as dist
    from transformers.training_args import ParallelMode

    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and (not dist.is_initialized() or train_args.parallel_mode != ParallelMode.DISTRIBUTED):
        raise MetacondError(f"{launched} processes were launched but the Trainer is not data-parallel (parallel mode "
                            f"{train_args.parallel_mode.value}); each would train its own copy: check the launcher and accelerate config")


def _read_step_log(path: Path) -> list[dict[str, Any]]:
    """Last record per step: steps re-run after a resume overwrite the killed run's records."""
    recs: dict[int, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                recs[r["step"]] = r
    return [recs[k] for k in sorted(recs)]


if __name__ == "__main__":
    from metacond.cli import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond pretrain"))
