"""The localization study: the paper's grid, the dry-run plan, and a real smoke run on the news fixture."""

import json
import subprocess
import sys

import pytest

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


def write_named_fixture(path, per_country=8):
    """News rows for every paper17 country whose sentences name local places (the MCQ builder needs names)."""
    import numpy as np

    from test_news import OUTLET

    rng = np.random.default_rng(0)
    rows = []
    for code, outlet in OUTLET.items():
        places = [f"{code.capitalize()}{s}" for s in ("ton", "ville", "burg", "field")]
        for i in range(per_country):
            a, b = rng.choice(places, 2, replace=False)
            text = " ".join(f"Officials said the market near {a} would reopen on day {rng.integers(1, 999)} after repairs. "
                            f"Traders from {b} welcomed the news at a meeting." for _ in range(4))
            rows.append({"url": f"https://www.{outlet}/news/{code}-{i}", "title": f"Market news {i} from {a}", "text": text})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


@pytest.mark.slow
def test_smoke_study_runs_end_to_end(tmp_path):
    write_named_fixture(tmp_path / "news.jsonl")
    out = run_study(LocalizationStudyArguments(preset="smoke", input=str(tmp_path / "news.jsonl"), output_dir=str(tmp_path / "study")))
    res = json.loads((out / "results.json").read_text())
    assert all(r["training"]["status"] == "trained" for r in res["runs"].values()), {n: r["training"] for n, r in res["runs"].items()}
    assert len(res["runs"]) == 7 and len(res["claims"]) >= 7
    for c in res["claims"]:
        assert c["verdict"] and c["evidence"]
    g = res["runs"]["tiny-global-meta"]["eval"]["regional"]
    assert {r["key"] for r in g} == {"africa", "america", "asia", "europe"} and {r["condition"] for r in g} == {"none", "full"}
    assert res["mcq"]["questions"] > 0 and set(res["mcq"]["models"]) == {"tiny-global-meta", "tiny-global-nometa"}
    for f in ("report.md", "region_matrix.png", "with_without_metadata.png", "learning_curves.png"):
        assert (out / f).stat().st_size > 500
    # Stages are cached: a second invocation redoes nothing.
    again = run_study(LocalizationStudyArguments(preset="smoke", input=str(tmp_path / "news.jsonl"), output_dir=str(tmp_path / "study")))
    assert json.loads((again / "results.json").read_text())["wall_time_seconds_this_invocation"] < 0.5 * res["wall_time_seconds_this_invocation"]
