"""Kill a pretraining run at random moments, relaunch it, and count the relaunches that resume correctly.

One trial: launch the tiny PCFG recipe (1 or 2 processes; checkpoints every 2 of 12 steps), SIGKILL the
launcher and its workers at a moment drawn uniformly over the training window (from the first logged
step to the end of the reference run, so kills land in steps, checkpoint writes and the final save),
then relaunch the same command until it finishes.
A trial passes when the finished run (a) resumed from the newest checkpoint that was complete at the
kill, or started afresh when none was, and (b) logged the same per-step examples and metadata
decisions as an uninterrupted reference run. Printed and written as JSON: trials, passes, the kill
moments and what each relaunch resumed from.

Usage: python benchmarks/kill_resume_loop.py [--trials 20] [--nproc 2] [--out benchmarks/last_kill_resume_loop.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "training" / "recipes" / "pcfg" / "tiny" / "pretrain.yaml"
STEPS, SAVE = 12, 2


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmd(out: Path, nproc: int) -> list[str]:
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(_port())]
    return [*(launch if nproc > 1 else [sys.executable]), "-m", "metacond.training.pretrain", "--config", str(RECIPE), "--output_dir", str(out),
            "--max_steps", str(STEPS), "--per_device_train_batch_size", str(16 // nproc), "--eval_strategy", "no", "--save_steps", str(SAVE),
            "--logging_steps", "1", "--plot", "false", "--pcfg_train_size", "2000", "--disable_tqdm", "true"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def _steps(out: Path) -> list[tuple]:
    rows = [json.loads(x) for x in (out / "steps.jsonl").read_text().splitlines() if x.strip()]
    return [(r["step"], r["examples"], r["with_metadata"]) for r in rows]


def _first_step_and_end(out: Path, nproc: int) -> tuple[float, float, int]:
    """Seconds from launch to the first logged step and to the end of an uninterrupted run, and its exit code."""
    proc = subprocess.Popen(_cmd(out, nproc), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    t0, first = time.time(), None
    while proc.poll() is None:
        if first is None and (out / "steps.jsonl").is_file():
            first = time.time() - t0
        time.sleep(0.05)
    return first or 0.0, time.time() - t0, proc.returncode


def trial(out: Path, nproc: int, kill_at: float, reference: list[tuple]) -> dict:
    """``kill_at``: seconds after the first logged step."""
    with open(out.parent / f"{out.name}.log", "w") as log:
        proc = subprocess.Popen(_cmd(out, nproc), stdout=log, stderr=subprocess.STDOUT, env=_env())
        while proc.poll() is None and not (out / "steps.jsonl").is_file():
            time.sleep(0.02)
        t0 = time.time()
        while proc.poll() is None and time.time() - t0 < kill_at:
            time.sleep(0.02)
        subprocess.run(["pkill", "-KILL", "-f", str(out)], check=False)
        proc.wait()
    time.sleep(0.5)
    if (out / "training_summary.json").is_file():  # the run wrote its summary before the kill landed
        return {"kill_at": round(kill_at, 2), "outcome": "finished before the kill", "ok": _steps(out) == reference}
    from metacond.training.checkpoints import resume_checkpoint

    # What the resume rule itself picks at the kill (the relaunch must agree with it and log the reference's steps).
    found = resume_checkpoint(out, say=lambda *a: None)
    newest = Path(found).name if found else None
    relaunches = 0
    while not (out / "training_summary.json").is_file() and relaunches < 3:
        relaunches += 1
        subprocess.run(_cmd(out, nproc), capture_output=True, text=True, timeout=900, env=_env())
    if not (out / "training_summary.json").is_file():
        return {"kill_at": round(kill_at, 2), "outcome": "never finished", "ok": False}
    s = json.loads((out / "training_summary.json").read_text())
    resumed = Path(s["resumed_from"]).name if s.get("resumed_from") else None
    ok = resumed == newest and _steps(out) == reference
    return {"kill_at": round(kill_at, 2), "newest_complete_at_kill": newest, "resumed_from": resumed, "relaunches": relaunches, "ok": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/last_kill_resume_loop.json")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        first, end, rc = _first_step_and_end(tmp / "reference", a.nproc)
        if rc != 0:
            sys.exit(f"the reference run failed (exit {rc})")
        duration = end - first  # the training window: first logged step to exit
        reference = _steps(tmp / "reference")
        results: list[dict] = []
        for k in range(a.trials):
            res = trial(tmp / f"trial{k}", a.nproc, rng.uniform(0.0, duration), reference)
            results.append(res)
            print(f"trial {k + 1}/{a.trials}: {res}", flush=True)
            summary = _summary(a, duration, results)
            Path(a.out).write_text(json.dumps(summary, indent=1))  # after every trial: a stopped loop keeps what it measured
    print(f"{summary['passed']}/{summary['trials']} trials resumed from the newest complete checkpoint and logged the reference's steps "
          f"({summary['killed_mid_run']} killed before finishing; kills drawn over a {duration:.1f} s training window)")


def _summary(a, duration: float, results: list[dict]) -> dict:
    return {"trials": len(results), "processes": a.nproc, "steps": STEPS, "save_every": SAVE, "training_window_seconds": round(duration, 1),
            "passed": sum(r["ok"] for r in results), "killed_mid_run": sum(r.get("outcome") is None for r in results), "results": results}


if __name__ == "__main__":
    main()
