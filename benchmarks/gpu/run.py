"""One command for a borrowed GPU machine: MFU benches, the localization study, the paper PCFG study, small files to --out.

Run from the repository root. It installs the carried wheels (benchmarks/gpu/prepare.py) and metacond
itself into .gpu_site/ offline, prints a time plan, runs each stage as a subprocess that is killed when
its minutes are up (the rest goes on), and copies at most 8 small files into --out: mfu.json (benches,
matmul peak, stage outcomes, versions), runner.log, the PCFG study's results.json, report.md,
verdicts.txt, verdicts.png and figures.zip (every figure), and localization.zip (that study's
results.json, report.md and figures; the stage runs when --news_input names a corpus with a country
per article, e.g. the shared Reuters-21578 set). Checkpoints and data stay in --work_dir.

Examples:
  python benchmarks/gpu/run.py --out /tmp/gpu-out --news_input reuters21578.jsonl   # GPU, ~24 min
  python benchmarks/gpu/run.py --out $OUT --detach --wait_minutes 9.3   # device tool: repeat until it says done
  python benchmarks/gpu/run.py --out /tmp/dry --dry_run                  # CPU plumbing check (tests/test_gpu_runner.py)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan import Plan, dry_plan, gpu_plan, study_steps  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WHEELS = Path(__file__).resolve().parent / "wheels"
MAX_FILES = 8  # what the device tool brings back from $OUT
MAX_FILE_MIB = 16
STUDY_FILES = ("results.json", "report.md", "verdicts.txt", "verdicts.png")
# The localization study evaluates through lm-eval, tunes with TRL and resolves URLs with tldextract; the GPU machines have none
# of them: prepare.py carries their wheels, and the stage runs only where they import (never half-run).
LOCALIZATION_MODULES = ("lm_eval", "trl", "tldextract")


class Log:
    """Print and append to runner.log, so the log comes back even when a stage is killed."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str = "") -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}" if msg else ""
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for the small files that come back")
    ap.add_argument("--budget_minutes", type=float, default=None, help="end-to-end minutes (default 24 on a GPU, 6 for --dry_run)")
    ap.add_argument("--dry_run", action="store_true", help="CPU plumbing check: tiny bench sizes, the smoke study")
    ap.add_argument("--work_dir", type=Path, default=ROOT / "runs" / "gpu-runner", help="checkpoints, data and stage logs (stay here)")
    ap.add_argument("--skip_install", action="store_true", help="use the packages already importable")
    ap.add_argument("--stages", default="bench,localization,study", help="comma list of bench, localization, study")
    ap.add_argument("--news_input", type=Path, default=None, help="news corpus with a country per article for the localization stage "
                    "(skipped without it)")
    ap.add_argument("--news_country_column", default="country", help="its country column ('' when the country comes from the URL)")
    ap.add_argument("--detach", action="store_true", help="start the run in its own session (or attach to it) and wait --wait_minutes; "
                                                           "repeat the same command until it prints 'runner: done'")
    ap.add_argument("--wait_minutes", type=float, default=9.3, help="with --detach: how long this command waits (device tool: 10 min per command)")
    return ap.parse_args(argv)


# --- setup -----------------------------------------------------------------------------------------

def importable(env: dict, modules: str = "datasets, metacond.studies.pcfg.study") -> bool:
    r = subprocess.run([sys.executable, "-c", f"import {modules}"], env=env, capture_output=True, cwd=ROOT)
    return r.returncode == 0


def install(site: Path, log: Log) -> None:
    """Carried wheels, then metacond itself (no deps: the image has torch/transformers), into ``site``, offline."""
    wheels = sorted(WHEELS.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"runner: no wheels in {WHEELS}: run `python benchmarks/gpu/prepare.py` and carry that folder")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--disable-pip-version-check",
           "--upgrade", "--target", str(site)]
    # setuptools/wheel are build tools for the next line only: keep them out of the stages' import path.
    subprocess.run(pip + [str(w) for w in wheels if not w.name.startswith(("setuptools-", "wheel-"))], check=True)
    # Build isolation finds setuptools/wheel among the carried wheels, whatever the image has.
    subprocess.run(pip + ["--find-links", str(WHEELS), str(ROOT)], check=True, cwd=ROOT)
    log(f"installed {len(wheels)} wheels and metacond into {site}")


def stage_env(site: Path | None, work: Path) -> dict:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # No network there; the study's data cache stays with the checkpoints.
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               METACOND_CACHE=str(work / "cache"), HF_DATASETS_CACHE=str(work / "hf-datasets-cache"), MPLBACKEND="Agg")
    return env


def versions(env: dict) -> dict:
    code = ("import json, importlib\nout = {}\nfor m in ('torch', 'transformers', 'datasets', 'huggingface_hub', 'pyarrow', 'fsspec', 'accelerate', 'numba', 'metacond'):\n"
            "    try: out[m] = getattr(importlib.import_module(m), '__version__', '?')\n    except Exception as e: out[m] = f'missing: {e}'\n"
            "import torch\nout['cuda_device'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None\nprint(json.dumps(out))")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    return json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr[-500:]}


# --- stages ----------------------------------------------------------------------------------------

def run_stage(name: str, argv: list[str], minutes: float, env: dict, logs: Path, log: Log) -> dict:
    """Run one stage in its own process group; kill the whole group (dataloader and compile workers too) when time is up."""
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / (name.replace(" ", "_") + ".log")
    log(f"stage {name}: start ({minutes:.1f} min): python {' '.join(argv)}")
    t0 = time.time()
    with path.open("w") as f:
        p = subprocess.Popen([sys.executable, *argv], stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        try:
            rc = p.wait(timeout=max(1.0, minutes * 60))
            status = "ok" if rc == 0 else f"failed (exit {rc})"
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            status = f"killed after {minutes:.1f} min"
    took = time.time() - t0
    tail = path.read_text(errors="replace").splitlines()[-15:]
    log(f"stage {name}: {status} in {took / 60:.2f} min")
    if status != "ok":
        for line in tail:
            log(f"  | {line}")
    return {"stage": name, "status": status, "minutes": round(took / 60, 2), "limit_minutes": round(minutes, 2), "log": str(path)}


def run_benches(plan: Plan, env: dict, work: Path, log: Log) -> tuple[list, list]:
    results, outcomes = [], []
    for b in plan.benches:
        out = work / b.json_name
        out.unlink(missing_ok=True)
        outcomes.append(run_stage(b.name, list(b.argv) + ["--json", str(out)], b.minutes, env, work / "logs", log))
        if out.is_file():
            r = json.loads(out.read_text()) | {"stage": b.name}
            results.append(r)
            mfu = "n/a off a GPU" if r.get("mfu") is None else f"{r['mfu'] * 100:.1f}% of {r['peak_bf16_tflops']:.0f} TFLOP/s ({r['peak_source']})"
            log(f"  {b.name}: {r['tokens_per_s']:,.0f} tokens/s, MFU {mfu}")
    return results, outcomes


def run_study(plan: Plan, deadline: float, bench: list, env: dict, work: Path, log: Log) -> tuple[dict, Path]:
    s = plan.study
    minutes_left = (deadline - time.time()) / 60 - plan.collect_minutes
    # The first bench (study-sized model, eager) is the closest measurement of the study's training step (no compile there).
    eager = [r for r in bench if r["stage"] == plan.benches[0].name]
    steps_file = work / "study_steps.json"
    if steps_file.is_file():  # a rerun on the same machine resumes the same study (its cache key holds max_steps)
        steps, facts = json.loads(steps_file.read_text())["max_steps"], {"reused": str(steps_file)}
    else:
        steps, facts = study_steps(s, minutes_left, eager[0]["tokens_per_s"] if eager else None)
        steps_file.write_text(json.dumps(facts))
    study_dir = work / f"pcfg-study-{s.preset}"
    argv = ["-m", "metacond", "pcfg-study", "--preset", s.preset, "--metadata_depths", *map(str, s.depths), "--seeds", str(s.seeds),
            "--max_steps", str(steps), "--output_dir", str(study_dir)]
    log(f"study: {steps} steps per model ({json.dumps(facts)})")
    outcome = run_stage(f"pcfg-study {s.preset}", argv, minutes_left, env, work / "logs", log)
    return outcome | {"max_steps": steps, "steps_plan": facts}, study_dir


def run_localization(plan: Plan, news: Path, country_column: str, env: dict, work: Path, log: Log) -> tuple[dict, Path]:
    loc = plan.localization
    out = work / f"localization-study-{loc.preset}"
    argv = ["-m", "metacond", "localization-study", "--preset", loc.preset, "--input", str(news.resolve()), "--regions", "all",
            "--output_dir", str(out)] + (["--country_column", country_column] if country_column else [])
    return run_stage(f"localization-study {loc.preset}", argv, loc.minutes, env, work / "logs", log), out


# --- collect ---------------------------------------------------------------------------------------

def collect(out: Path, study_dir: Path | None, summary: dict, log: Log, loc_dir: Path | None = None) -> list[str]:
    """At most MAX_FILES files of at most MAX_FILE_MIB each: the device tool brings back no more."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "mfu.json").write_text(json.dumps(summary, indent=1, default=str))
    if study_dir is not None and study_dir.is_dir():
        for name in STUDY_FILES:
            if (study_dir / name).is_file():
                shutil.copy2(study_dir / name, out / name)
        pngs = sorted(study_dir.glob("*.png"))
        if pngs:
            with zipfile.ZipFile(out / "figures.zip", "w", zipfile.ZIP_STORED) as z:  # PNGs do not compress further
                for p in pngs:
                    z.write(p, p.name)
    if loc_dir is not None and (loc_dir / "results.json").is_file():
        with zipfile.ZipFile(out / "localization.zip", "w", zipfile.ZIP_DEFLATED) as z:
            for p in [loc_dir / "results.json", loc_dir / "report.md"] + sorted(loc_dir.glob("*.png")):
                if p.is_file():
                    z.write(p, p.name)
    if log.path.parent.resolve() != out.resolve():
        shutil.copy2(log.path, out / "runner.log")
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    big = [f for f in files if (out / f).stat().st_size > MAX_FILE_MIB * 2 ** 20]
    if len(files) > MAX_FILES or big:
        log(f"runner: warning: {len(files)} files in {out} (limit {MAX_FILES}), over {MAX_FILE_MIB} MiB: {big}")
    return files


def run(a: argparse.Namespace) -> int:
    t0 = time.time()
    plan = dry_plan(a.budget_minutes or 6.0) if a.dry_run else gpu_plan(a.budget_minutes or 24.0)
    deadline = t0 + plan.budget_minutes * 60
    work = a.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "runner.log").unlink(missing_ok=True)
    log = Log(work / "runner.log")
    for line in plan.lines():
        log(line)
    stages = set(a.stages.split(","))
    env = stage_env(None, work)
    site = ROOT / ".gpu_site"
    if a.skip_install or (importable(env) and not (site / "metacond").is_dir()):
        log("setup: datasets and metacond importable; no install")
    else:
        install(site, log)
        env = stage_env(site, work)
        if not importable(env):
            raise SystemExit("runner: datasets/metacond still not importable after the install; see the pip output above")
    summary = {"plan": plan.lines(), "versions": versions(env), "dry_run": a.dry_run, "stages": [], "benchmarks": []}
    log(f"versions: {json.dumps(summary['versions'])}")
    if not a.dry_run and summary["versions"].get("cuda_device") is None:
        raise SystemExit("runner: no GPU visible; use --dry_run for the CPU plumbing check")
    if "bench" in stages:
        summary["benchmarks"], summary["stages"] = run_benches(plan, env, work, log)
    loc_dir = None
    if "localization" in stages:
        missing = [m for m in LOCALIZATION_MODULES if not importable(env, m)]
        if a.news_input is None:
            log("localization: skipped (no --news_input corpus)")
        elif missing:
            log(f"localization: skipped ({', '.join(missing)} not importable on this machine: carry the wheels of benchmarks/gpu/prepare.py)")
            summary["stages"].append({"stage": "localization", "status": "skipped", "missing": missing})
        else:
            outcome, loc_dir = run_localization(plan, a.news_input, a.news_country_column, env, work, log)
            summary["stages"].append(outcome)
    study_dir = None
    if "study" in stages:
        outcome, study_dir = run_study(plan, deadline, summary["benchmarks"], env, work, log)
        summary["stages"].append(outcome)
    summary["wall_minutes"] = round((time.time() - t0) / 60, 2)
    log(f"runner: done in {summary['wall_minutes']:.1f} min (budget {plan.budget_minutes:.1f})")
    files = collect(a.out, study_dir, summary, log, loc_dir)
    print(f"files in {a.out}: {', '.join(files)}")
    return 0 if all(s["status"] in ("ok", "skipped") for s in summary["stages"]) else 1


# --- detach (the device tool allows 10 minutes per command; the run takes ~24) ------------------------

def detach(a: argparse.Namespace) -> int:
    work = a.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    inner_out, pid_file, done_file = work / "out", work / "runner.pid", work / "runner.rc"
    alive = pid_file.is_file() and Path(f"/proc/{pid_file.read_text().strip()}").exists()
    if not alive and not done_file.exists():
        inner = ["--out", str(inner_out), "--work_dir", str(work), "--stages", a.stages, "--news_country_column", a.news_country_column]
        inner += ["--news_input", str(a.news_input.resolve())] if a.news_input else []
        inner += (["--budget_minutes", str(a.budget_minutes)] if a.budget_minutes else []) + (["--dry_run"] if a.dry_run else [])
        inner += ["--skip_install"] if a.skip_install else []
        cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))} {shlex.join(inner)}; echo $? > {shlex.quote(str(done_file))}"
        p = subprocess.Popen(["bash", "-c", cmd], cwd=ROOT, start_new_session=True, stdout=(work / "detached.out").open("w"), stderr=subprocess.STDOUT)
        pid_file.write_text(str(p.pid))
        print(f"runner: started in its own session (pid {p.pid}); output in {work / 'detached.out'}", flush=True)
    else:
        print(f"runner: attached to {work}", flush=True)
    end = time.time() + a.wait_minutes * 60
    seen = 0
    while time.time() < end and not done_file.exists():
        time.sleep(5)
        seen = _echo(work / "detached.out", seen)
    _echo(work / "detached.out", seen)
    a.out.mkdir(parents=True, exist_ok=True)
    if inner_out.is_dir():
        for f in inner_out.iterdir():
            shutil.copy2(f, a.out / f.name)
    if (work / "runner.log").is_file():
        shutil.copy2(work / "runner.log", a.out / "runner.log")
    if done_file.exists():
        print(f"runner: done (exit {done_file.read_text().strip()}); files in {a.out}")
        return int(done_file.read_text().strip() or 1)
    print("runner: still running; repeat the same command (within the machine's idle window) to wait on and collect")
    return 0


def _echo(path: Path, seen: int) -> int:
    if path.is_file():
        text = path.read_text(errors="replace")
        print(text[seen:], end="", flush=True)
        return len(text)
    return seen


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse(argv)
    return detach(a) if a.detach else run(a)


if __name__ == "__main__":
    sys.exit(main())
