"""How to train several seeds on a 2-core CPU: one two-thread process in turn, or single-thread processes side by side.

The PCFG study trains every D_M with several seeds (``studies/pcfg/study.py``). Both routes below
train the same two models of the study's `cpu` recipe (D_M = 5, seeds 0 and 1, the same steps)
through the study's own ``train_models``; printed, measured in one run: the wall time of each route
(start-up included) and its training steps per second summed over its runs (the Trainer's own
``train_runtime``, start-up excluded: what a long run sees):

  - sequential: one process, torch's default threads (2 here), the two models one after the other;
  - parallel:   ``train_models(..., workers=2)``: two spawned processes, one thread each, side by side;
  - parallel + bf16 autocast: the same with ``bf16=True`` (pays only where the matmuls dominate).

Usage: python benchmarks/bench_seed_parallel.py [--steps 150] [--out benchmarks/last_seed_parallel_run.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def _time_route(steps: int, workers: int, bf16: bool, tmp: Path) -> tuple[float, float]:
    from metacond.studies.pcfg.study import PRESETS, base_recipe, build_data, recipe_for, train_models

    p = replace(PRESETS["cpu"], train_size=20_000, bf16=bf16)
    _, ds_dir = build_data(p, 0)
    base = base_recipe(p, ds_dir, 0, steps)
    model, data, meta, run, train = base
    base = (model, data, meta, replace(run, plot=False), replace(train, logging_steps=steps, save_steps=10 * steps))
    recipes = [recipe_for(base, 5, 5, tmp / f"w{workers}-bf16{bf16}-s{s}", s) for s in (0, 1)]
    from metacond.modeling.summary import TrainingSummary

    t0 = time.perf_counter()
    train_models(recipes, workers)
    wall = time.perf_counter() - t0
    runtimes = [TrainingSummary.load(r.training.output_dir).train_metrics["train_runtime"] for r in recipes]
    # Side by side the loops overlap: steps/s is each loop's own rate, summed; in turn, total steps over total loop time.
    rate = sum(steps / t for t in runtimes) if workers > 1 else len(recipes) * steps / sum(runtimes)
    return wall, rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--out", default="benchmarks/last_seed_parallel_run.json")
    a = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _time_route(10, 1, False, tmp / "warmup")  # builds (or loads) the data once, outside the timings
        seq, seq_rate = _time_route(a.steps, 1, False, tmp)
        par, par_rate = _time_route(a.steps, 2, False, tmp)
        par_bf16, bf16_rate = _time_route(a.steps, 2, True, tmp)
    res = {"steps_per_model": a.steps, "models": 2, "threads_default": torch.get_num_threads(), "sequential_seconds": round(seq, 1),
           "parallel_seconds": round(par, 1), "parallel_bf16_seconds": round(par_bf16, 1), "speedup_parallel": round(seq / par, 2),
           "speedup_parallel_bf16": round(seq / par_bf16, 2), "steps_per_second_sequential": round(seq_rate, 2),
           "steps_per_second_parallel": round(par_rate, 2), "steps_per_second_parallel_bf16": round(bf16_rate, 2)}
    print(json.dumps(res, indent=1))
    print(f"two models: one 2-thread process in turn {seq:.1f} s ({seq_rate:.2f} steps/s in its loops); two 1-thread processes side by side "
          f"{par:.1f} s ({par_rate:.2f} steps/s; wall {seq / par:.2f}x); with bf16 {par_bf16:.1f} s ({bf16_rate:.2f} steps/s; {seq / par_bf16:.2f}x)")
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
