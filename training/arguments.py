"""Settings of ``metacond pretrain``: dataclasses parsed by ``HfArgumentParser`` from YAML recipes + flags."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from transformers import TrainingArguments

from metacond import MetacondError


@dataclass
class ModelArguments:
    model_size: str = field(default="tiny", metadata={"help": "Named size: tiny, pcfg-paper, 0.5b, 1b (see metacond.modeling.sizes)."})
    init_from: str | None = field(default=None, metadata={"help": "Start from this checkpoint directory instead of random weights (e.g. a separate cooldown)."})
    tokenizer: str | None = field(default=None, metadata={"help": "Tokenizer directory; default: the dataset's tokenizer/."})
    max_position_embeddings: int | None = field(default=None, metadata={"help": "Override the size's context length."})
    rope_theta: float = field(default=10_000.0, metadata={"help": "RoPE base."})
    tie_word_embeddings: bool = field(default=False, metadata={"help": "Share input and output embeddings."})
    attn_implementation: str = field(default="sdpa", metadata={"help": "sdpa (default), eager, or flash_attention_2 on GPUs that have it."})
    model_seed: int = field(default=0, metadata={"help": "Seed of the weight initialization."})

    def __post_init__(self) -> None:
        from metacond.modeling.sizes import SIZES

        if self.model_size not in SIZES:
            raise MetacondError(f"unknown model size {self.model_size!r}; choose from {', '.join(SIZES)}")


@dataclass
class DataArguments:
    dataset: str | None = field(default=None, metadata={"help": "Builder output directory, save_to_disk directory, parquet/JSONL file, or Hub dataset name."})
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name."})
    train_split: str = field(default="train", metadata={"help": "Training split."})
    eval_split: str | None = field(default="validation", metadata={"help": "Evaluation split (if present)."})
    eval_examples: int = field(default=256, metadata={"help": "Cap on evaluation examples."})
    streaming: bool = field(default=False, metadata={"help": "Stream the corpus (IterableDataset) instead of loading it; needs max_steps."})
    packing: bool = field(default=False, metadata={"help": "Padding-free packing with per-document position_ids (no cross-document attention)."})
    block_size: int | None = field(default=None, metadata={"help": "With packing: rows of this many tokens (documents split to fit); default one row per batch."})
    max_length: int | None = field(default=None, metadata={"help": "Truncate longer examples (counted and reported)."})
    pcfg_grammar: str | None = field(default=None, metadata={"help": "Build the PCFG dataset in place (cached) from this preset or grammar file when 'dataset' is unset."})
    pcfg_metadata_depth: int = field(default=0, metadata={"help": "D_M for the in-place PCFG build."})
    pcfg_metadata_fraction: float = field(default=0.5, metadata={"help": "Fraction of PCFG sequences that show metadata."})
    pcfg_train_size: int = field(default=20_000, metadata={"help": "PCFG training sequences."})
    pcfg_validation_size: int = field(default=1_000, metadata={"help": "PCFG validation sequences."})
    pcfg_test_size: int = field(default=1_000, metadata={"help": "PCFG test sequences."})
    pcfg_seed: int = field(default=0, metadata={"help": "PCFG data seed."})


@dataclass
class MetadataArguments:
    metadata_fraction: float = field(default=1.0, metadata={"help": "Probability that an example keeps its metadata (on top of what the builder wrote)."})
    metadata_field_dropout: list[float] = field(default_factory=list, metadata={"help": "Per-field drop probability (one value for all fields, or one per field)."})
    cooldown_fraction: float = field(default=0.0, metadata={"help": "MeCo cooldown: the last fraction of steps train on the same data without metadata (0.1 in the paper)."})
    metadata_mode: str = field(default="auto", metadata={"help": "How dropped fields vanish: mask (replace by <mask>), remove (delete tokens), auto (the builder's choice)."})

    def __post_init__(self) -> None:
        if not 0.0 <= self.cooldown_fraction < 1.0:
            raise MetacondError(f"cooldown_fraction must be in [0, 1), got {self.cooldown_fraction}")
        if self.metadata_mode not in ("auto", "mask", "remove"):
            raise MetacondError(f"metadata_mode must be auto, mask or remove, got {self.metadata_mode!r}")


@dataclass
class RunArguments:
    dry_run: bool = field(default=False, metadata={"help": "Parse, check the data and model, print the plan; train nothing."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Start afresh even if output_dir holds a finished run or checkpoints."})
    plot: bool = field(default=True, metadata={"help": "Write loss_curve.png at the end."})
    final_eval: bool = field(default=True, metadata={"help": "Score the validation split (up to eval_examples) at the end: the loss goes to "
                                                             "the summary, the loss figure and the card."})
    strict_resume: bool = field(default=False, metadata={"help": "Stop when the newest checkpoint is incomplete instead of resuming from the "
                                                                 "newest complete one."})


@dataclass
class PretrainingArguments(TrainingArguments):
    """``TrainingArguments`` with defaults for from-scratch pretraining."""

    output_dir: str | None = field(default=None, metadata={"help": "Run directory: checkpoints, then the final model."})
    max_steps: int = field(default=-1, metadata={"help": "Optimizer steps (required when streaming; else from num_train_epochs)."})
    learning_rate: float = field(default=3e-4, metadata={"help": "Peak learning rate."})
    warmup_steps: float = field(default=0.05, metadata={"help": "Warmup steps (a float < 1 is a fraction of max_steps)."})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule; the cooldown does not change it."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    save_steps: float = field(default=500, metadata={"help": "Checkpoint every N steps (resume point)."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept."})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Experiment trackers (none by default: runs offline)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the collator's inputs (position_ids)."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Worker processes per device (one torch thread each)."})

    def __post_init__(self) -> None:
        # Under torchrun / accelerate launch on a machine without CUDA, the Trainer distributes only when it is
        # told it runs on the CPU (gloo); otherwise every process trains its own copy.
        import os

        import torch

        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
            self.use_cpu = True
            self.ddp_backend: str | None = self.ddp_backend or "gloo"  # TrainingArguments' types (read as Any here)
        if self.ddp_find_unused_parameters is None:
            self.ddp_find_unused_parameters: bool | None = False  # every parameter is used; the search costs a graph traversal per step
        super().__post_init__()


@dataclass
class HubTarget:
    """Where a finished run is published (``push_to_hub`` with ``hub_model_id``); the push itself is the cards layer's."""

    repo_id: str
    private: bool = False
    revision: str | None = None


@dataclass
class PretrainingRecipe:
    """Everything one pretraining run is given, as one object from parsing to the written summary. Studies derive
    variants with ``dataclasses.replace`` on a part (``replace(recipe, training=replace(recipe.training, seed=1))``)."""

    model: ModelArguments
    data: DataArguments
    metadata: MetadataArguments
    run: RunArguments
    training: PretrainingArguments

    def with_training(self, **changes: Any) -> "PretrainingRecipe":
        """The recipe with some ``TrainingArguments`` replaced (``recipe.with_training(seed=1, output_dir=...)``)."""
        return replace(self, training=replace(self.training, **changes))

    def hub_target(self) -> HubTarget | None:
        t = self.training
        if not t.push_to_hub:
            return None
        if not t.hub_model_id:
            raise MetacondError("push_to_hub needs hub_model_id (USER/NAME)")
        return HubTarget(repo_id=t.hub_model_id, private=bool(t.hub_private_repo), revision=getattr(t, "hub_revision", None))
