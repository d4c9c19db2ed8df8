"""GPU training throughput and MFU of the metacond training path (bf16, packed sequences).

Runs `MetacondTrainer` with the scheduled stream and the packing collator — the same code as
`metacond pretrain` — on synthetic documents (random lengths, random tokens) packed into blocks,
and reports tokens/s and model FLOPs utilization (MFU). The peak is measured in the same process
(best of `--peak-reps` timed bf16 matmuls of `--peak-matmul`², 8192 by default) because clocks and
cooling differ between machines of one model; the spec-sheet peak is reported beside it. The first
`--warmup` steps are excluded from the timing.

FLOPs per token = 6·(non-embedding params + LM head) + 6·layers·hidden·block (causal attention).

Usage (H100, target ≥ 40% MFU for pcfg-paper at block 512):
  python benchmarks/bench_gpu_mfu.py --size pcfg-paper --block-size 512 --batch 64
  python benchmarks/bench_gpu_mfu.py --size 0.5b --block-size 2048 --batch 8 --vocab 32000
  python benchmarks/bench_gpu_mfu.py --size tiny --steps 6 --warmup 2 --cpu      # plumbing check without a GPU
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "GH200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


def peak_for(name: str) -> float | None:
    for key, v in PEAK_BF16.items():
        if key in name:
            return v
    return None


def measure_matmul_peak(n: int = 8192, reps: int = 10, device: str = "cuda") -> float:
    """Best-of-``reps`` dense bf16 matmul throughput (FLOP/s) of an n x n x n product on random data.

    Random data, not zeros: zeros let the GPU run cooler and faster (894 vs 788 TFLOP/s seen on an H200).
    """
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=gen)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=gen)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3):  # warm-up: cuBLAS heuristics and clocks
        a @ b
    sync()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    del a, b
    return 2.0 * n ** 3 / best


def word_tokenizer(vocab: int):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", "<mask>"])}
    for i in range(vocab - len(words)):
        words[f"w{i}"] = len(words)
    tok = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="pcfg-paper")
    ap.add_argument("--block-size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64, help="documents per device step (packed into blocks)")
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--cpu", action="store_true", help="allow running without a GPU (plumbing check; no MFU)")
    ap.add_argument("--peak-matmul", type=int, default=8192, help="side of the bf16 matmul that measures the peak (0: spec sheet only)")
    ap.add_argument("--peak-reps", type=int, default=10, help="timed matmuls; the best one counts")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    if not torch.cuda.is_available() and not a.cpu:
        raise SystemExit("no GPU visible; pass --cpu for a plumbing check")
    from datasets import Dataset
    from transformers import TrainerCallback, TrainingArguments

    from metacond.modeling.checkpoint import build_model
    from metacond.training.collator import MetadataCollator
    from metacond.training.data import ScheduledDataset
    from metacond.training.schedule import MetadataSchedule
    from metacond.training.trainer import MetacondTrainer

    on_gpu = torch.cuda.is_available()
    # Measured before the model exists, so the run's own memory does not disturb it.
    measured = measure_matmul_peak(a.peak_matmul, a.peak_reps, "cuda" if on_gpu else "cpu") if a.peak_matmul > 0 else None
    tok = word_tokenizer(a.vocab)
    rng = np.random.default_rng(0)
    # Documents averaging about a quarter block, so each block packs several.
    n_docs = a.batch * a.steps
    lens = np.clip(rng.geometric(4.0 / a.block_size, size=n_docs), 8, a.block_size)
    ids = [[tok.bos_token_id] + rng.integers(5, a.vocab, size=int(n) - 1).tolist() for n in lens]
    ds = Dataset.from_dict({"input_ids": ids, "labels": ids, "attention_mask": [[1] * len(x) for x in ids]})
    model = build_model(a.size, tok, attn_implementation=a.attn, max_position_embeddings=max(a.block_size, 1024))
    model.config.use_cache = False
    stream = ScheduledDataset(ds, MetadataSchedule(), n_docs, seed=0)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)

    out = tempfile.mkdtemp(prefix="bench-gpu-")
    args = TrainingArguments(output_dir=out, per_device_train_batch_size=a.batch, max_steps=a.steps, learning_rate=3e-4, warmup_steps=0.05,
                             bf16=torch.cuda.is_available(), torch_compile=a.compile, logging_steps=10_000, save_strategy="no", report_to="none",
                             disable_tqdm=True, remove_unused_columns=False, dataloader_num_workers=2 if torch.cuda.is_available() else 0,
                             use_cpu=not torch.cuda.is_available())
    collator = MetadataCollator(tok.pad_token_id, packing=True, block_size=a.block_size)
    trainer = MetacondTrainer(model=model, args=args, train_dataset=stream, data_collator=collator, processing_class=tok, callbacks=[Timer()])
    trainer.train()
    timed = times[a.warmup:]
    tokens_per_step = float(lens.sum()) / a.steps
    tps = tokens_per_step / float(np.mean(timed))
    emb = model.get_input_embeddings().weight.numel()
    n = sum(p.numel() for p in model.parameters()) - emb
    cfg = model.config
    fpt = 6 * n + 6 * cfg.num_hidden_layers * cfg.hidden_size * a.block_size
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    spec = peak_for(dev) if on_gpu else None
    # MFU against the measured peak; off a GPU the measured peak is a CPU bf16 figure and the run is fp32 (plumbing only).
    peak = measured if (on_gpu and measured) else spec
    res = {"device": dev, "size": a.size, "params": sum(p.numel() for p in model.parameters()), "block_size": a.block_size, "batch_docs": a.batch,
           "tokens_per_step": tokens_per_step, "step_s": float(np.mean(timed)), "tokens_per_s": tps, "flops_per_token": fpt,
           "achieved_tflops": tps * fpt / 1e12, "peak_bf16_tflops": None if peak is None else peak / 1e12,
           "peak_source": "measured" if (on_gpu and measured) else ("spec sheet" if spec else None),
           "measured_matmul_tflops": None if measured is None else measured / 1e12, "matmul_size": a.peak_matmul or None,
           "spec_bf16_tflops": None if spec is None else spec / 1e12, "mfu": None if peak is None else tps * fpt / peak,
           "mfu_vs_spec": None if spec is None else tps * fpt / spec, "compile": a.compile, "attn": a.attn,
           "torch": torch.__version__, "steps": a.steps, "warmup": a.warmup}
    print(json.dumps(res, indent=1))
    if res["mfu"] is not None:
        print(f"{a.size} on {dev}: {tps:,.0f} tokens/s, {res['achieved_tflops']:.1f} TFLOP/s, MFU {res['mfu'] * 100:.1f}% "
              f"of {res['peak_bf16_tflops']:.0f} TFLOP/s ({res['peak_source']})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
