"""Localized MCQ evaluation speed: 800 questions x 5 metadata conditions on a tiny model, CPU.

Runs ``metacond eval`` (lm-eval, batched log-likelihood of the 4 options, per-country bootstrap) end
to end — model load, task build, 800 x 5 x 4 = 16,000 scored options, results/table/PNG — and, as
the baseline in the same run, the same lm-eval tasks with batch size 1 on one condition (its time is
multiplied by 5 for the ratio). Target: under 2 minutes end to end.

Usage: python benchmarks/bench_localnews_eval.py [--questions 800] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

PLACES = {"africa": ("Nigeria", ["Lagos", "Abuja", "Kano", "Ibadan", "Enugu"]), "america": ("Jamaica", ["Kingston", "Montego Bay", "Ocho Rios", "Negril"]),
          "asia": ("India", ["Delhi", "Mumbai", "Chennai", "Kolkata", "Pune"]), "europe": ("Ireland", ["Dublin", "Cork", "Galway", "Limerick"])}
WORDS = "the council said on monday that the new market near the river would open after months of delays and rising costs".split()


def write_questions(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for i in range(n):
            cont = list(PLACES)[i % 4]
            country, names = PLACES[cont]
            opts = list(rng.choice(names, 4, replace=False))
            q = "Fill in the blank: " + " ".join(rng.choice(WORDS, 28)) + " in ____ ."
            f.write(json.dumps({"question": q, "options": opts, "correct_answer": opts[i % 4], "distractors": [o for o in opts if o != opts[i % 4]],
                                "country": country, "continent": cont, "generated_by": "bench"}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    from metacond.eval_tasks.run_eval import EvalArguments, run_eval
    from metacond.modeling.checkpoint import build_model
    from metacond.modeling.tokenizer import build_text_tokenizer

    tmp = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    write_questions(tmp / "q.jsonl", a.questions)
    texts = [json.loads(line)["question"] for line in open(tmp / "q.jsonl")][:200]
    tok = build_text_tokenizer(texts + ["URL: punchng.com\nCOUNTRY: ng\nCONTINENT: africa\n\nQuestion: x\nAnswer: Lagos"] * 20, vocab_size=2000)
    build_model("tiny", tok, seed=0).save_pretrained(tmp / "model")
    tok.save_pretrained(tmp / "model")
    t0 = time.perf_counter()
    payload = run_eval(EvalArguments(model=str(tmp / "model"), conditions="none,country,continent,url,full", mcq_data=str(tmp / "q.jsonl"),
                                     batch_size=a.batch_size, output_dir=str(tmp / "eval")))
    t_all = time.perf_counter() - t0
    n_scored = sum(v["effective"] for v in payload.lm_eval["mcq"]["n-samples"].values())
    t0 = time.perf_counter()
    run_eval(EvalArguments(model=str(tmp / "model"), conditions="full", mcq_data=str(tmp / "q.jsonl"), batch_size=1, bootstrap_iters=0,
                           output_dir=str(tmp / "eval1")))
    t_one = time.perf_counter() - t0
    res = {"questions": a.questions, "conditions": 5, "questions_scored": n_scored, "seconds_end_to_end": t_all, "batch_size": a.batch_size,
           "baseline_batch1_one_condition_seconds": t_one, "baseline_estimate_5_conditions": 5 * t_one, "speedup": 5 * t_one / t_all}
    print(f"{a.questions} questions x 5 conditions ({n_scored} question evaluations, 4 options each), batch {a.batch_size}: "
          f"{t_all:.1f} s end to end (target < 120 s)")
    print(f"baseline, lm-eval with batch size 1: {t_one:.1f} s for one condition -> {5 * t_one:.1f} s for five; batched is {res['speedup']:.1f}x faster")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
