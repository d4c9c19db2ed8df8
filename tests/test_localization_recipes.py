"""Every localization pretraining recipe's paths resolve against a real (smoke) news build, and the
MeCo two-stage recipes agree with each other and with MeCo's schedule."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from news_fixture import articles

from metacond.data_builders.news.builder import NewsBuildConfig, build_news
from metacond.training.pretrain import parse_args, run_pretraining

ROOT = Path(__file__).resolve().parents[1]
RECIPE_DIR = ROOT / "training" / "recipes" / "localization"
RECIPES = sorted(r for r in RECIPE_DIR.rglob("*.yaml") if "sft" not in r.parts and "data" not in r.parts)  # data/: news-build recipes (tests/test_news.py)


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    """A directory laid out like the repository's `runs/`: a news build at the recipes' default output_dir."""
    root = tmp_path_factory.mktemp("root")
    rows = list(articles(120))
    for r in rows:
        r["text"] = " ".join([r["text"]] * 4)  # past the builder's 200-character minimum
        r["url"] = r["url"].replace(".example/", ".com/")  # a real public suffix; the country comes from its column
    (root / "news.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    # The recipes' templates: `full` for pretraining, `none` for MeCo's no-metadata cooldown.
    build_news(NewsBuildConfig(input=str(root / "news.jsonl"), output_dir=str(root / NewsBuildConfig.output_dir), experiments=["global"],
                               templates=["full", "none"], country_column="country", vocab_size=400, test_fraction=0.2), progress=False)
    return root


def _values(recipe: Path) -> dict:
    return yaml.safe_load(recipe.read_text())


def test_recipes_are_found_and_point_into_a_build_layout():
    assert {r.relative_to(RECIPE_DIR).as_posix() for r in RECIPES} >= {
        "tiny/pretrain.yaml", "0.5b/pretrain.yaml", "1b/pretrain.yaml", "1b/cooldown.yaml", "1b/meco_stage1.yaml", "1b/meco_stage2.yaml"}
    for r in RECIPES:
        # <build output_dir>/<experiment>/<template>: an experiment directory alone is not a dataset.
        assert Path(_values(r)["dataset"]).parts[-2:] in {("global", "full"), ("global", "none")}, r


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.relative_to(RECIPE_DIR).as_posix() for r in RECIPES])
def test_recipe_dataset_resolves_against_a_smoke_build(recipe, run_root, tmp_path, monkeypatch):
    values = _values(recipe)
    monkeypatch.chdir(run_root)  # the recipe's relative paths, as a user runs it from the repository root
    extra = ["--output_dir", str(tmp_path / "o"), "--dry_run", "true", "--max_steps", "4"]
    if values.get("bf16") and not torch.cuda.is_available():
        extra += ["--bf16", "false"]  # GPU recipes: TrainingArguments refuses bf16 on a CPU-only machine
    if values.get("resume_from_checkpoint"):
        (run_root / values["resume_from_checkpoint"]).mkdir(parents=True, exist_ok=True)  # stands in for stage 1's save
    res = run_pretraining(parse_args(["--config", str(recipe), *extra]))  # the recipe's own `dataset`, no override
    assert res["status"] == "dry_run"
    assert Path(res["plan"]["dataset"]).resolve() == (run_root / values["dataset"]).resolve()


def test_the_old_experiment_level_path_is_refused(run_root, tmp_path):
    from metacond import MetacondError

    recipe = RECIPE_DIR / "tiny" / "pretrain.yaml"
    with pytest.raises(MetacondError):
        run_pretraining(parse_args(["--config", str(recipe), "--dataset", str(run_root / "runs" / "news" / "global"),
                                     "--output_dir", str(tmp_path / "o"), "--dry_run", "true"]))


def test_meco_stages_match_each_other_and_meco():
    s1, s2 = (_values(RECIPE_DIR / "1b" / f"meco_stage{i}.yaml") for i in (1, 2))
    for v in (s1, s2):
        assert v["lr_scheduler_type"] == "cosine_with_min_lr" and v["lr_scheduler_kwargs"] == {"min_lr_rate": 0.1}
        assert v["adam_beta2"] == 0.95 and v["cooldown_fraction"] == 0.0
    # The restored schedule continues only if the horizon and optimizer settings are the same.
    same = ("max_steps", "learning_rate", "warmup_steps", "weight_decay", "per_device_train_batch_size", "gradient_accumulation_steps", "model_size")
    assert {k: s1[k] for k in same} == {k: s2[k] for k in same}
    step = int(Path(s2["resume_from_checkpoint"]).name.split("-")[1])
    assert step == round(0.9 * s1["max_steps"]) and step % s1["save_steps"] == 0  # stage 1 saves MeCo's 90% point
    assert Path(s2["resume_from_checkpoint"]).parent.name in RECIPE_DIR.joinpath("1b", "meco_stage1.yaml").read_text()
    assert s2["dataset"] != s1["dataset"] and s2["ignore_data_skip"] is True


def test_meco_schedule_decays_to_a_tenth_floor():
    """transformers' cosine_with_min_lr with min_lr_rate 0.1 is MeCo's min_lr_ratio 0.1."""
    from transformers import get_scheduler

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = get_scheduler("cosine_with_min_lr", opt, num_warmup_steps=2, num_training_steps=20, scheduler_specific_kwargs={"min_lr_rate": 0.1})
    lrs = []
    for _ in range(20):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[-1] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0)
