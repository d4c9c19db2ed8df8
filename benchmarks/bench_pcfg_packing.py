"""Padded batches against first-fit packed rows for the PCFG study's `cpu` recipe, measured in one run.

The study trains each model in a single-thread process (two side by side). Both routes here train
the study's own typed recipe (``studies.pcfg.study.base_recipe`` + ``recipe_for``, D_M = 5, seed 0)
for the same steps and the same examples per step, one thread, one after the other:

  - padded: each batch of 32 sequences padded to its longest (what the study ran until now);
  - packed: the same 32 sequences placed first-fit into rows as wide as the longest training
    sequence, ``position_ids`` restarting per sequence (no attention across sequences).

Printed: the Trainer loop's seconds (start-up excluded), the computed positions per step (real
tokens plus padding) and the last logged training loss of each route (the two see the same scored
tokens, so their losses differ only by float reduction order). The ratio is what counts.

Usage: python benchmarks/bench_pcfg_packing.py [--steps 300] [--out benchmarks/last_pcfg_packing_run.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path


def _route(packing: bool, steps: int, tmp: Path) -> dict:
    import torch

    from metacond.modeling.summary import TrainingSummary
    from metacond.studies.pcfg.study import PRESETS, base_recipe, build_data, recipe_for
    from metacond.training.collator import MetadataCollator
    from metacond.training.pretrain import run_pretraining

    torch.set_num_threads(1)
    p = replace(PRESETS["cpu"], train_size=20_000, packing=packing)
    dd, ds_dir = build_data(p, 0)
    recipe = recipe_for(base_recipe(p, ds_dir, 0, steps), 5, 5, tmp / f"packing-{packing}")
    recipe = replace(recipe, run=replace(recipe.run, plot=False, overwrite_output_dir=True),
                     training=replace(recipe.training, logging_steps=max(1, steps // 10), save_steps=10 * steps, disable_tqdm=True))
    run_pretraining(recipe)
    data = recipe.data
    s = TrainingSummary.load(recipe.training.output_dir)
    # Positions the model computes per step, on the first 20 batches of the training split.
    col = MetadataCollator(pad_token_id=0, packing=data.packing, block_size=data.block_size)
    rows = dd["train"].select(range(20 * p.batch_size))
    widths = [col([rows[i] for i in range(k, k + p.batch_size)])["input_ids"].numel() for k in range(0, len(rows), p.batch_size)]
    real = sum(len(r) for r in rows["input_ids"]) / 20
    losses = [x["loss"] for x in s.loss_curve if "loss" in x]
    return {"packing": packing, "block_size": data.block_size, "steps": steps, "loop_seconds": round(s.train_metrics["train_runtime"], 2),
            "positions_per_step": sum(widths) / len(widths), "real_tokens_per_step": real, "last_logged_loss": losses[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default="benchmarks/last_pcfg_packing_run.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _route(False, 10, tmp / "warmup")  # builds (or loads) the data once, outside the timings
        rows = {"padded": _route(False, a.steps, tmp), "packed": _route(True, a.steps, tmp)}
    base = rows["padded"]["loop_seconds"]
    print(f"{'route':<8} {'block':>6} {'loop s':>8} {'speed vs padded':>16} {'positions/step':>15} {'real tokens/step':>17} {'last loss':>10}")
    for name, r in rows.items():
        print(f"{name:<8} {str(r['block_size']):>6} {r['loop_seconds']:>8.1f} {base / r['loop_seconds']:>15.2f}x {r['positions_per_step']:>15.0f} "
              f"{r['real_tokens_per_step']:>17.0f} {r['last_logged_loss']:>10.4f}")
    Path(a.out).write_text(json.dumps({"rows": rows, "speedup_packed": round(base / rows["packed"]["loop_seconds"], 3)}, indent=1))


if __name__ == "__main__":
    main()
