"""The GPU runner (benchmarks/gpu/) stays runnable without a GPU: its CPU dry run, time plan, stage kill and file limits."""

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benchmarks" / "gpu"

# Imports the GPU machine cannot satisfy (not in its image, not carried). A real import of one fails there,
# so here it is recorded and fails too; availability probes (find_spec) still answer, as there they would not matter.
BLOCKER = '''
import importlib.abc, importlib.machinery, os, sys
BLOCKED = {"trl", "lm_eval", "evaluate", "tldextract"}
class _Block(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name.split(".")[0] in BLOCKED else None
    def create_module(self, spec):
        with open(os.environ["GPU_RUNNER_BLOCK_LOG"], "a") as f:
            f.write(spec.name + "\\n")
        raise ImportError(f"{spec.name} is not on the GPU machine")
    def exec_module(self, module):
        raise ImportError(module.__name__)
sys.meta_path.insert(0, _Block())
'''


def load(name):
    sys.path.insert(0, str(GPU))
    try:
        spec = importlib.util.spec_from_file_location(f"gpu_{name}", GPU / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up there
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(GPU))


def test_plan_fits_the_loan_and_steps_follow_the_minutes_left():
    plan = load("plan")
    p = plan.gpu_plan(24.0)
    lines = p.lines()
    assert lines[0].startswith("time plan (gpu, budget 24.0 min)")
    total = float(next(x for x in lines if x.strip().startswith("total")).split()[1])
    assert total == pytest.approx(24.0) and p.study_minutes > 10
    names = [b.name for b in p.benches]
    assert names == ["bench pcfg-paper-b512-eager", "bench pcfg-paper-b512-compiled", "bench 0.5b-b2048-eager", "bench 0.5b-b2048-compiled"]
    assert all("--compile" in b.argv for b in p.benches if "compiled" in b.name)
    s = p.study
    few, _ = plan.study_steps(s, 12.0, 200_000)
    more, facts = plan.study_steps(s, 16.0, 200_000)
    assert s.min_steps <= few < more <= s.max_steps and facts["from_bench"]
    assert plan.study_steps(s, 10_000.0, 1e9)[0] == s.max_steps  # never beyond the preset
    assert plan.study_steps(s, 1.0, None)[0] == s.min_steps


def test_a_stage_that_overruns_is_killed_and_reported(tmp_path):
    run = load("run")
    log = run.Log(tmp_path / "runner.log")
    t = run.time.time()
    res = run.run_stage("sleeper", ["-c", "import time; print('started', flush=True); time.sleep(60)"], 0.03, dict(os.environ), tmp_path, log)
    assert res["status"].startswith("killed after") and run.time.time() - t < 20
    assert "stage sleeper: killed" in (tmp_path / "runner.log").read_text()
    ok = run.run_stage("quick", ["-c", "pass"], 1.0, dict(os.environ), tmp_path, log)
    assert ok["status"] == "ok"


def test_prepare_check_flags_missing_and_duplicate_wheels(tmp_path):
    prep = load("prepare")
    (tmp_path / "dill-0.4.1-py3-none-any.whl").write_bytes(b"x")
    (tmp_path / "dill-0.4.0-py3-none-any.whl").write_bytes(b"x")
    problems = prep.check(tmp_path, ["dill==0.4.1", "datasets==5.0.1"])
    assert any("dill: 2 wheels" in p for p in problems) and any("datasets==5.0.1" in p for p in problems)
    # The pins fit what transformers 5.17 allows: huggingface-hub < 2 (datasets 5.0.1 accepts < 2.0).
    assert "datasets==5.0.1" in prep.PINNED


@pytest.mark.slow
def test_cpu_dry_run_of_the_one_entry_point(tmp_path):
    out, work, block = tmp_path / "out", tmp_path / "work", tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(BLOCKER)
    blocked = tmp_path / "blocked.txt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(block)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
               GPU_RUNNER_BLOCK_LOG=str(blocked), OMP_NUM_THREADS="1")
    from news_fixture import write_named_fixture

    write_named_fixture(tmp_path / "news.jsonl")
    r = subprocess.run([sys.executable, "benchmarks/gpu/run.py", "--out", str(out), "--dry_run", "--work_dir", str(work), "--news_input",
                        str(tmp_path / "news.jsonl"), "--news_country_column", ""], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # The plan comes first, before any stage starts.
    lines = [x.split("] ", 1)[-1] for x in r.stdout.splitlines()]
    first_stage = next(i for i, x in enumerate(lines) if x.startswith("stage "))
    plan_at = next(i for i, x in enumerate(lines) if x.startswith("time plan (cpu dry run, budget 6.0 min)"))
    assert plan_at < first_stage
    assert any(x.strip().startswith("pcfg-study --preset smoke (D_M 0 5 x 1 seeds)") for x in lines[:first_stage])
    assert any(x.strip().startswith("localization-study --preset smoke") for x in lines[:first_stage])
    # Only small files come back, at most 8 (the device tool's limit).
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(["mfu.json", "runner.log", "results.json", "report.md", "verdicts.txt", "verdicts.png", "figures.zip"])
    assert all((out / f).stat().st_size < 16 * 2 ** 20 for f in files)
    summary = json.loads((out / "mfu.json").read_text())
    # The GPU stack lacks the localization study's lm-eval, TRL and tldextract: the stage says so and is skipped, never half-run.
    assert [s["status"] for s in summary["stages"]] == ["ok", "ok", "skipped", "ok"], summary["stages"]
    assert set(summary["stages"][2]["missing"]) == {"lm_eval", "trl", "tldextract"}
    assert any("localization: skipped (lm_eval, trl, tldextract not importable" in x for x in lines)
    assert len(summary["benchmarks"]) == 2 and all(b["tokens_per_s"] > 0 and b["measured_matmul_tflops"] > 0 for b in summary["benchmarks"])
    steps = summary["stages"][-1]["max_steps"]
    results = json.loads((out / "results.json").read_text())
    assert results["metadata_depths"] == [0, 5] and results["preset_config"]["max_steps"] == steps
    assert (out / "verdicts.txt").read_text().strip()
    with zipfile.ZipFile(out / "figures.zip") as z:
        assert {"verdicts.png", "probing.png", "grammar_accuracy.png", "loss.png", "loss_by_position.png"} <= set(z.namelist())
    # Checkpoints stay in the work dir.
    assert (work / "pcfg-study-smoke" / "models" / "dm5-seed0" / "config.json").is_file()
    # Neither the benches nor the study import what the GPU machine lacks: the only attempts are the runner's one probe per
    # localization module.
    assert sorted(blocked.read_text().split()) == ["lm_eval", "tldextract", "trl"], blocked.read_text()
