"""The localization study: the paper's grid, the dry-run plan, and a real smoke run on the news fixture."""

import json
import subprocess
import sys

import pytest
from news_fixture import write_named_fixture

from metacond.eval_tasks.localization.grid import expand_grid
from metacond.eval_tasks.localization.study import LocalizationStudyArguments, plan, run_study


def test_paper_grid_is_exactly_the_papers_31_runs():
    runs = expand_grid("paper")
    paper = [r for r in runs if r.paper]
    assert len(paper) == 31 and len(runs) == 32
    fam = {}
    for r in paper:
        fam[(r.family, r.size)] = fam.get((r.family, r.size), 0) + 1
    assert fam == {("main", "0.5b"): 10, ("main", "1b"): 10, ("leave-one-out", "1b"): 8, ("ablation", "1b"): 3}
    assert sum(r.metadata for r in paper if r.family == "main") == 10 and {r.template for r in paper if r.family == "ablation"} == {
        "url", "url_country", "url_continent"}
    assert [r for r in runs if not r.paper][0].cooldown_fraction == 0.1
    assert len({r.name for r in runs}) == len(runs)
    cpu = expand_grid("cpu")
    assert {r.family for r in cpu} == {"main", "leave-one-out", "ablation", "cooldown"} and {r.size for r in cpu} == {"tiny"} and len(cpu) == 22


def test_dry_run_prints_budgets_and_compute():
    pl = plan(LocalizationStudyArguments(preset="paper", dry_run=True))
    assert pl["paper_runs"] == 31 and pl["counts_by_family"] == {"main": 20, "leave-one-out": 8, "ablation": 3, "cooldown": 1}
    one = pl["runs"][0]
    assert one["train_flops"] == 6 * one["parameters"] * one["token_budget"]
    r = subprocess.run([sys.executable, "-m", "metacond", "localization-study", "--preset", "cpu", "--dry_run", "true"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "22 runs" in r.stdout and "total training compute" in r.stdout


@pytest.mark.slow
def test_smoke_study_runs_end_to_end(tmp_path):
    import math

    import numpy as np

    from metacond.eval_tasks.stats import VERDICTS

    write_named_fixture(tmp_path / "news.jsonl")
    out = run_study(LocalizationStudyArguments(preset="smoke", input=str(tmp_path / "news.jsonl"), output_dir=str(tmp_path / "study")))
    res = json.loads((out / "results.json").read_text())
    assert all(r["training"]["status"] == "trained" for r in res["runs"].values()), {n: r["training"] for n, r in res["runs"].items()}
    assert len(res["runs"]) == 7 and len(res["claims"]) >= 7
    assert all(c["verdict"] in VERDICTS for c in res["claims"])
    # The first claim's paired estimate is recomputable from the two runs' per-article scores: continents weighted
    # equally, each the difference of summed bits over summed bytes of the articles both models scored.
    items = {n: json.loads((out / "models" / n / "eval" / "eval_results.json").read_text())["items"] for n in ("tiny-global-meta", "tiny-global-nometa")}
    none = {i["id"]: i for i in items["tiny-global-nometa"] if i["family"] == "ppl" and i["condition"] == "none"}
    full = {i["id"]: i for i in items["tiny-global-meta"] if i["family"] == "ppl" and i["condition"] == "full"}
    assert none and set(none) == set(full)
    per = []
    for c in sorted({i["continent"] for i in none.values()}):
        ids = [k for k, i in none.items() if i["continent"] == c]
        per.append(sum(none[k]["nll"] - full[k]["nll"] for k in ids) / math.log(2) / sum(none[k]["bytes"] for k in ids))
    first = res["claims"][0]
    assert first["finding"].startswith("Metadata conditioning lowers perplexity")
    assert first["difference"]["estimate"] == pytest.approx(float(np.mean(per)), rel=1e-9)
    g = res["runs"]["tiny-global-meta"]["eval"]["regional"]
    assert {r["key"] for r in g} == {"africa", "america", "asia", "europe"} and {r["condition"] for r in g} == {"none", "full"}
    assert res["mcq"]["questions"] > 0 and set(res["mcq"]["models"]) == {"tiny-global-meta", "tiny-global-nometa"}
    for f in ("report.md", "region_matrix.png", "paired_differences.png", "learning_curves.png"):
        assert (out / f).stat().st_size > 500
    # Paths in committed results are relative to the study directory.
    assert str(out) not in (out / "results.json").read_text()
    # Stages are cached: a second invocation rewrites no model and no evaluation.
    cached = sorted(out.glob("models/*/model.safetensors")) + sorted(out.glob("models/*/eval/eval_results.json"))
    mtimes = {p: p.stat().st_mtime_ns for p in cached}
    run_study(LocalizationStudyArguments(preset="smoke", input=str(tmp_path / "news.jsonl"), output_dir=str(tmp_path / "study")))
    assert mtimes and mtimes == {p: p.stat().st_mtime_ns for p in cached}
