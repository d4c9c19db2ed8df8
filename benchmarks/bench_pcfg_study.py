"""Training throughput of the PCFG study's `cpu` recipe: before and after the v2 design, in one run.

Each configuration trains the study's own typed recipe (`studies.pcfg.study.base_recipe` +
`recipe_for`, D_M = 5) for the same number of steps through `run_pretraining`, and reports
non-padding input tokens per second of the Trainer's loop:

  - before: the v1 `cpu` preset's grammar (`small`, sequences 32-130 terminals) with padded batches;
  - after:  the v2 `cpu` grammar (32-70 terminals) with padded batches (what `make demo` runs);
  - after + packing: the same with padding-free packing (per-document position ids);
  - bare loop: a plain PyTorch forward/backward/AdamW loop over the same padded batches (no Trainer,
    no scheduled dataset), the ceiling for this model on this machine.

Usage: python benchmarks/bench_pcfg_study.py [--steps 150] [--out benchmarks/last_pcfg_study_run.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def _trainer_tokens_per_second(grammar: str, steps: int, packing: bool, tmp: Path) -> dict:
    from metacond.studies.pcfg.study import PRESETS, base_recipe, build_data, recipe_for
    from metacond.training.pretrain import run_pretraining

    p = replace(PRESETS["cpu"], grammar=grammar, train_size=20_000)
    dd, ds_dir = build_data(p, 0)
    recipe = recipe_for(base_recipe(p, ds_dir, 0, steps), 5, 5, tmp / f"{grammar}-{packing}")
    recipe = replace(recipe, data=replace(recipe.data, packing=packing), run=replace(recipe.run, plot=False, overwrite_output_dir=True),
                     training=replace(recipe.training, logging_steps=steps, save_steps=10 * steps))
    s = run_pretraining(recipe)["summary"]
    return {"grammar": grammar, "packing": packing, "steps": steps, "input_tokens": s.input_tokens, "seconds": s.train_metrics["train_runtime"],
            "tokens_per_second": s.input_tokens / s.train_metrics["train_runtime"]}


def _bare_loop_tokens_per_second(steps: int) -> dict:
    import torch
    from transformers import AutoTokenizer

    from metacond.modeling.checkpoint import build_model
    from metacond.studies.pcfg.study import PRESETS, build_data
    from metacond.training.collator import MetadataCollator

    p = replace(PRESETS["cpu"], train_size=20_000)
    dd, ds_dir = build_data(p, 0)
    tok = AutoTokenizer.from_pretrained(ds_dir / "tokenizer")
    model = build_model(p.model_size, tok, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=p.learning_rate, weight_decay=0.1)
    col = MetadataCollator(pad_token_id=tok.pad_token_id)
    rows = dd["train"].select(range(steps * p.batch_size))
    batches = [col([rows[i] for i in range(s, s + p.batch_size)]) for s in range(0, len(rows), p.batch_size)]
    ntok = sum(int(b["attention_mask"].sum()) for b in batches)
    model.train()
    t0 = time.perf_counter()
    for b in batches:
        loss = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    dt = time.perf_counter() - t0
    return {"grammar": p.grammar, "packing": False, "steps": steps, "input_tokens": ntok, "seconds": dt, "tokens_per_second": ntok / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--out", default="benchmarks/last_pcfg_study_run.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = {"before (small grammar, padded)": _trainer_tokens_per_second("small", a.steps, False, tmp),
                "after (cpu grammar, padded)": _trainer_tokens_per_second("cpu", a.steps, False, tmp),
                "after + packing": _trainer_tokens_per_second("cpu", a.steps, True, tmp),
                "bare PyTorch loop (cpu grammar, padded)": _bare_loop_tokens_per_second(a.steps)}
    ref = rows["before (small grammar, padded)"]["tokens_per_second"]
    print(f"{'configuration':<42} {'tokens/s':>10} {'vs before':>10}")
    for name, r in rows.items():
        print(f"{name:<42} {r['tokens_per_second']:>10,.0f} {r['tokens_per_second'] / ref:>9.2f}x")
    Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
