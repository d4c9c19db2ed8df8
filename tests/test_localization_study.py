"""The localization study: the paper's grid, the dry-run plan, and a real smoke run on the news fixture."""

import json
import subprocess
import sys

import pytest
from news_fixture import write_named_fixture

from metacond.studies.localization.grid import expand_grid
from metacond.studies.localization.study import LocalizationStudyArguments, plan, run_study


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
    # The cpu preset trains what its verdicts need: global with and without metadata (country-only: the corpus's one field), the cooldown;
    # 2 seeds each. The gpu preset adds the continent-only ablation.
    cpu = expand_grid("cpu")
    assert {r.family for r in cpu} == {"main", "cooldown"} and {r.size for r in cpu} == {"mini"} and len(cpu) == 6
    assert sorted({r.arm for r in cpu}) == ["mini-global-meta", "mini-global-meta-cooldown", "mini-global-nometa"]
    assert "mini-global-continent" not in {r.arm for r in cpu} and "small-global-continent" in {r.arm for r in expand_grid("gpu")}
    assert {r.seed for r in cpu} == {0, 1} and {r.template for r in cpu if r.arm == "mini-global-meta"} == {"country"}
    assert [r.name for r in expand_grid("cpu", seeds=3) if r.arm == "mini-global-nometa"] == [f"mini-global-nometa-s{k}" for k in range(3)]


def test_dry_run_prints_budgets_and_compute():
    pl = plan(LocalizationStudyArguments(preset="paper", dry_run=True))
    assert pl["paper_runs"] == 31 and pl["counts_by_family"] == {"main": 20, "leave-one-out": 8, "ablation": 3, "cooldown": 1}
    one = pl["runs"][0]
    assert one["token_budget"] is None and one["train_flops"] == 6 * one["parameters"] * one["token_bound"]
    r = subprocess.run([sys.executable, "-m", "metacond", "localization-study", "--preset", "cpu", "--dry_run", "true"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "6 runs" in r.stdout and "total training compute" in r.stdout and "known once the data is built" in r.stdout
    # Equal budgets: every run of a preset plans the same documents (steps x batch).
    assert len({x["documents"] for x in plan(LocalizationStudyArguments(preset="cpu", dry_run=True))["runs"]}) == 1


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


def test_models_are_evaluated_within_their_training_block():
    """Train and test see the same positions: each run's model has the block's positions, evaluation caps its context at the
    block a run trained on, and the scored bytes leave room for the metadata inside that context."""
    from metacond.eval_tasks.localnews.defaults import body_budget
    from metacond.studies.localization.grid import PRESETS
    from metacond.studies.localization.study import base_recipe, eval_body_bytes, recipe_for

    for preset in ("smoke", "cpu", "gpu", "paper"):
        args = LocalizationStudyArguments(preset=preset, dry_run=True)
        for r in expand_grid(preset)[:3]:
            recipe = recipe_for(base_recipe(args), r, None, None)
            model, data = recipe.model, recipe.data
            assert model.max_position_embeddings == data.block_size == PRESETS[preset].block_size
            budget = eval_body_bytes(data.block_size)
            assert body_budget(budget, data.block_size) == budget < data.block_size - 32
    with pytest.raises(Exception, match="no room"):
        body_budget(512, 512)


def test_eval_context_is_capped_at_the_trained_block(tmp_path):
    from types import SimpleNamespace

    from metacond.eval_tasks.localnews.defaults import context_length as eval_context_length
    from metacond.modeling.summary import TrainingSummary

    cfg = SimpleNamespace(max_position_embeddings=4096)
    assert eval_context_length(tmp_path, cfg) == 4096  # no summary: the model's positions
    TrainingSummary(recipe={"data": {"block_size": 512}}, model={}, data={}, tokens_seen={}, metadata_scheme={}, loss_curve=[],
                    final_train_loss=None, wall_time_seconds=0.0).save(tmp_path)
    assert eval_context_length(tmp_path, cfg) == 512
