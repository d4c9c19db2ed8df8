"""CPU training throughput of `metacond pretrain` against a bare `Trainer`, with achieved FLOP/s.

For each size (tiny, pcfg-paper), on the same model initialization and the same batches in the same
order (the bare Trainer reads the dataset in the order our scheduled stream visits it):
  - bare: `transformers.Trainer` + `DataCollatorForSeq2Seq`, sequential sampling, no callbacks;
  - ours: `metacond.training.pretrain.run_pretraining` (scheduled stream, metadata collator, step log).
Both report the Trainer's own `train_runtime`. FLOPs per token = 6·(non-embedding params + LM head)
+ 6·layers·hidden·seq (causal attention), and achieved FLOP/s is divided by this machine's fp32
matmul peak measured in the same run.

Usage: python benchmarks/bench_pretrain.py [--sizes tiny pcfg-paper] [--steps-tiny 300] [--steps-paper 8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def flops_per_token(model, seq_len: float) -> float:
    cfg = model.config
    emb = model.get_input_embeddings().weight.numel()
    n = sum(p.numel() for p in model.parameters()) - emb  # keeps the LM head, drops the lookup table
    return 6 * n + 6 * cfg.num_hidden_layers * cfg.hidden_size * seq_len


def bare_trainer(model, tok, ds, batch, steps, out):
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    # The library's standard collator for pre-tokenized inputs with labels (pads labels with -100).
    collate = DataCollatorForSeq2Seq(tok, label_pad_token_id=-100, padding=True)

    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=batch, max_steps=steps, learning_rate=3e-4, warmup_steps=0.05,
                             weight_decay=0.1, lr_scheduler_type="cosine", logging_steps=10_000, save_strategy="no", report_to="none",
                             disable_tqdm=True, remove_unused_columns=False, train_sampling_strategy="sequential", seed=0,
                             dataloader_pin_memory=False)
    model.config.use_cache = False
    tr = Trainer(model=model, args=args, train_dataset=ds, data_collator=collate)
    res = tr.train()
    return res.metrics["train_runtime"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "pcfg-paper"])
    ap.add_argument("--steps-tiny", type=int, default=300)
    ap.add_argument("--steps-paper", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2, help="alternating bare/ours runs; the best of each counts")
    ap.add_argument("--json", type=str, default=None)
    a = ap.parse_args()

    from transformers import AutoTokenizer

    from metacond.data_builders.pcfg.dataset import PCFGDataConfig, build_pcfg_dataset
    from metacond.modeling.checkpoint import build_model
    from metacond.training.data import ScheduledDataset
    from metacond.training.pretrain import parse_args, run_pretraining
    from metacond.training.schedule import MetadataSchedule

    tmp = Path(tempfile.mkdtemp(prefix="bench-pretrain-"))
    dd, data_dir, _ = build_pcfg_dataset(PCFGDataConfig(grammar="small", metadata_depth=3, train_size=4000, validation_size=8, test_size=8,
                                                        bayes_sample=0, output_dir=str(tmp / "data")), progress=False)
    tok = AutoTokenizer.from_pretrained(data_dir / "tokenizer")
    peak = matmul_peak()
    print(f"fp32 matmul peak (2048², {torch.get_num_threads()} threads): {peak / 1e9:.1f} GFLOP/s")
    results = {"matmul_peak_gflops": peak / 1e9, "threads": torch.get_num_threads()}
    for size in a.sizes:
        steps = a.steps_tiny if size == "tiny" else a.steps_paper
        n_ex = steps * a.batch
        order = ScheduledDataset(dd["train"], MetadataSchedule(), n_ex, seed=0)
        idx = [order.index(p) for p in range(n_ex)]
        same_batches = dd["train"].select(idx).select_columns(["input_ids", "labels", "attention_mask"])
        tokens = int(sum(len(x) for x in same_batches["input_ids"]))
        seq = tokens / n_ex
        model = build_model(size, tok, seed=0)
        fpt = flops_per_token(model, seq)
        t_bare, t_ours, t_cmd = [], [], []
        for rep in range(a.repeats):
            # Alternate so warm-up and thermal effects do not favour one side.
            t_bare.append(bare_trainer(build_model(size, tok, seed=0), tok, same_batches, a.batch, steps, tmp / f"bare-{size}-{rep}"))
            argv = ["--dataset", str(data_dir), "--output_dir", str(tmp / f"ours-{size}-{rep}"), "--model_size", size, "--per_device_train_batch_size",
                    str(a.batch), "--max_steps", str(steps), "--learning_rate", "3e-4", "--logging_steps", "10000", "--save_strategy", "no",
                    "--disable_tqdm", "true", "--plot", "false", "--dataloader_pin_memory", "false", "--eval_strategy", "no", "--seed", "0"]
            t0 = time.perf_counter()
            res = run_pretraining(parse_args(argv))
            t_cmd.append(time.perf_counter() - t0)
            t_ours.append(res["summary"].train_metrics["train_runtime"])
        t_bare, t_ours, t_cmd = min(t_bare), min(t_ours), min(t_cmd)
        assert res["summary"].input_tokens == tokens, (res["summary"].tokens_seen, tokens)
        row = {
            "steps": steps, "batch": a.batch, "tokens": tokens, "mean_seq_len": seq, "params": sum(p.numel() for p in model.parameters()),
            "flops_per_token": fpt, "bare_runtime_s": t_bare, "ours_runtime_s": t_ours, "ours_command_s": t_cmd,
            "bare_tokens_per_s": tokens / t_bare, "ours_tokens_per_s": tokens / t_ours,
            "ours_peak_fraction": tokens / t_ours * fpt / peak, "bare_peak_fraction": tokens / t_bare * fpt / peak,
            "overhead": t_ours / t_bare - 1.0,
        }
        results[size] = row
        print(f"{size:>10}: {steps} steps × {a.batch} seqs ({tokens} tokens, mean length {seq:.0f}); bare Trainer {row['bare_tokens_per_s']:,.0f} tok/s, "
              f"metacond pretrain {row['ours_tokens_per_s']:,.0f} tok/s = {row['ours_peak_fraction'] * 100:.1f}% of fp32 peak; "
              f"overhead {row['overhead'] * 100:+.1f}% (command end to end {t_cmd:.1f} s)")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
