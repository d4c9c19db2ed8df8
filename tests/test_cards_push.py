"""Model and dataset cards from real runs/builds, and `metacond push` checked at the HfApi boundary."""

import json
import os
import subprocess
import sys

import pytest

from metacond import MetacondError
from metacond.eval_tasks.results import EvalResults
from metacond.model_cards.model_card import write_model_card
from metacond.model_cards.push import PushArguments, describe, plan_push, push

TOKEN = "hf_thisIsAFakeTokenForTests0123456789"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny news model trained for real (with two checkpoints), evaluated with metacond eval."""
    from news_fixture import small_build, write_questions

    from metacond.eval_tasks.run_eval import EvalArguments, run_eval
    from metacond.training.pretrain import parse_args, run_pretraining

    d = tmp_path_factory.mktemp("card")
    news = small_build(d, per_country=4)
    out = d / "run"
    run_pretraining(parse_args(["--dataset", str(news / "global" / "full"), "--output_dir", str(out), "--model_size", "tiny", "--max_steps", "4",
                                 "--per_device_train_batch_size", "4", "--save_steps", "2", "--logging_steps", "2", "--disable_tqdm", "true",
                                 "--plot", "false", "--max_position_embeddings", "4096"]))
    write_questions(d / "q.jsonl", per_continent=2)
    run_eval(EvalArguments(model=str(out), conditions="none,full", mcq_data=str(d / "q.jsonl"), bootstrap_iters=50, letter=True, official=True, limit=2,
                           ppl_data=str(news / "global" / "full" / "parquet" / "test.parquet")))
    return {"run": out, "news": news, "dir": d}


def test_model_card_loads_back_with_eval_results(run):
    from huggingface_hub import ModelCard

    path = write_model_card(run["run"], repo_id="someone/loc-tiny")
    card = ModelCard.load(path)
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation" and card.data.license == "apache-2.0"
    ev = card.data.eval_results
    summary = EvalResults.load(run["run"] / "eval").summary
    assert len(ev) == len(summary) > 0
    assert {r.family for r in summary} == {"mcq", "letter", "official", "ppl"}  # every family the card must name (was a KeyError)
    got = {(e.dataset_config, e.metric_value) for e in ev}
    assert {(f"{r.family}-{r.condition}-{r.continent}", r.value) for r in summary} == got
    assert "model-index" in path.read_text()
    text = card.text
    params = json.loads((run["run"] / "training_summary.json").read_text())["model"]["parameters"]
    loss_rows = [x for x in text.splitlines() if x.startswith(("| training loss at the end |", "| validation loss |"))]
    assert len(loss_rows) == 2 and "(last logged)" in loss_rows[0], loss_rows
    assert f"{params:,}" in text and "COUNTRY: ng" in text and 'from_pretrained("someone/loc-tiny")' in text
    # The example prompt is the build's own first training document up to its body marker; no placeholder links or ids.
    import pyarrow.parquet as pq

    first = pq.read_table(run["news"] / "global" / "full" / "parquet" / "train.parquet", columns=["document"]).column("document")[0].as_py()
    with_meta = next(x for x in text.splitlines() if x.startswith("with_meta = "))
    prefix = eval(with_meta.split("=", 1)[1])
    assert first.startswith(prefix) and prefix.startswith("URL: ") and prefix.rstrip().endswith(("TITLE:", "CONTENT:"))
    assert "https://github.com/)" not in text and "metacond/" not in path.read_text().split("---", 2)[1]
    for section in ("## Model details", "## Metadata scheme", "## Training data", "## Training procedure", "## Evaluation",
                    "## Limitations and biases", "## Citation"):
        assert section in text


def test_the_card_example_runs_as_written(run):
    """The copy-paste snippet works against the local checkpoint (repo id swapped for the path)."""
    from huggingface_hub import ModelCard

    text = ModelCard.load(write_model_card(run["run"], repo_id="someone/loc-tiny")).text
    code = text.split("```python\n", 1)[1].split("```", 1)[0].replace("someone/loc-tiny", str(run["run"]))
    code = code.replace("max_new_tokens=60", "max_new_tokens=5")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-2000:]


def test_push_dry_run_lists_exactly_the_expected_files(run, tmp_path):
    import shutil

    src = tmp_path / "run"
    shutil.copytree(run["run"], src)
    (src / "README.md").unlink(missing_ok=True)
    (src / ".env").write_text(f"HF_TOKEN={TOKEN}\n")
    (src / "outside.txt").symlink_to("/etc/hostname")
    (src / "optimizer.pt").write_bytes(b"x")
    plan = plan_push(PushArguments(path=str(src), repo_id="someone/loc-tiny", dry_run=True))
    main = plan["commits"][0]
    pushed = {dst for _, dst in main["files"]}
    top = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file() and not p.is_symlink()
           and not p.relative_to(src).parts[0].startswith("checkpoint-")}
    # training_args.bin is a pickle that can hold a hub token: never pushed.
    assert pushed == (top - {".env", "optimizer.pt", "training_args.bin"}) | {"README.md"} and "training_args.bin" in top
    for must in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "training_summary.json", "eval/eval_results.json"):
        assert must in pushed
    assert sorted(plan["refused"]) == [".env (looks like a secret)", "outside.txt (symlink leaving the directory)"]
    branches = [c["revision"] for c in plan["commits"][1:]]
    assert [b.split("-tokens-")[0] for b in branches] == ["step-2", "step-4"] and all(int(b.split("-tokens-")[1]) > 0 for b in branches)
    for c in plan["commits"][1:]:
        names = {dst for _, dst in c["files"]}
        assert "model.safetensors" in names and "trainer_state.json" in names and not any("optimizer" in n or "rng_state" in n for n in names)
    listing = describe(plan)
    assert TOKEN not in listing and TOKEN not in plan["generated"]["README.md"]


def test_push_sends_exactly_the_planned_operations(run, monkeypatch):
    import huggingface_hub
    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, **kw: calls.append(("create_repo", kw)) or f"https://hf.co/{kw['repo_id']}")
    monkeypatch.setattr(HfApi, "create_branch", lambda self, **kw: calls.append(("create_branch", kw)))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(("upload_folder", kw)))

    def create_commit(self, **kw):
        calls.append(("create_commit", {**kw, "operations": sorted(op.path_in_repo for op in kw["operations"])}))
        for op in kw["operations"]:
            assert isinstance(op, huggingface_hub.CommitOperationAdd)
        return type("Info", (), {"commit_url": f"https://hf.co/{kw['repo_id']}/commit/{len(calls)}"})()

    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    args = PushArguments(path=str(run["run"]), repo_id="someone/loc-tiny", private=True)
    plan = push(args)
    expected = [("create_repo", {"repo_id": "someone/loc-tiny", "repo_type": "model", "private": True, "exist_ok": True})]
    for c in plan["commits"]:
        if c["create_branch"]:
            expected.append(("create_branch", {"repo_id": "someone/loc-tiny", "repo_type": "model", "branch": c["revision"], "exist_ok": True}))
        expected.append(("create_commit", {"repo_id": "someone/loc-tiny", "repo_type": "model", "operations": sorted(d for _, d in c["files"]),
                                           "commit_message": c["message"], "revision": c["revision"], "create_pr": False}))
    assert calls == expected and len(plan["commits"]) == 3
    # The token is never written: not in the run directory, not in what was pushed.
    for p in run["run"].rglob("*"):
        if p.is_file():
            assert TOKEN.encode() not in p.read_bytes()


def test_dataset_card_and_push_plan(run):
    from huggingface_hub import DatasetCard

    news = run["news"]
    card = DatasetCard.load(news / "README.md")
    configs = {c["config_name"]: c for c in card.data.to_dict()["configs"]}
    assert "global--full" in configs and {f["split"] for f in configs["global--full"]["data_files"]} >= {"train", "test"}
    for f in configs["global--full"]["data_files"]:
        assert (news / f["path"]).is_file()
    plan = plan_push(PushArguments(path=str(news), repo_id="someone/news", dry_run=True))
    pushed = {dst for _, dst in plan["commits"][0]["files"]}
    assert plan["repo_type"] == "dataset" and "README.md" in pushed and "global/full/parquet/train.parquet" in pushed
    assert not any("/hf/" in p or p.startswith("hf/") for p in pushed)


def test_pretrain_push_to_hub_goes_through_metacond_push(run, tmp_path, monkeypatch):
    """Training hands the finished run to the publisher it was given (the cards layer's push, as `metacond pretrain`
    wires it); without one, a recipe asking for a push stops before training, in one line."""
    from huggingface_hub import HfApi

    from metacond.model_cards.push import publish_run
    from metacond.training.pretrain import parse_args, run_pretraining

    commits = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, **kw: None)
    monkeypatch.setattr(HfApi, "create_branch", lambda self, **kw: None)
    monkeypatch.setattr(HfApi, "create_commit", lambda self, **kw: commits.append((kw["revision"], sorted(o.path_in_repo for o in kw["operations"]))))
    recipe = lambda: parse_args(["--dataset", str(run["news"] / "global" / "full"), "--output_dir", str(tmp_path / "r"), "--model_size", "tiny",  # noqa: E731
                                 "--max_steps", "2", "--per_device_train_batch_size", "2", "--disable_tqdm", "true", "--plot", "false",
                                 "--save_strategy", "no", "--push_to_hub", "true", "--hub_model_id", "someone/pushed"])
    with pytest.raises(MetacondError, match="no Hub publisher; run `metacond pretrain`"):
        run_pretraining(recipe())
    assert not (tmp_path / "r").exists()
    res = run_pretraining(recipe(), publish=publish_run)
    assert res["status"] == "finished" and len(commits) == 1
    rev, files = commits[0]
    assert rev == "main" and {"README.md", "model.safetensors", "config.json", "tokenizer.json", "training_summary.json"} <= set(files)


def test_push_cli_dry_run_and_bad_input(run):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "metacond", "push", str(run["run"]), "--repo-id", "someone/loc-tiny", "--dry-run"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "+ model.safetensors" in r.stdout and "dry run: nothing was sent" in r.stdout and "create_branch step-2-tokens-" in r.stdout
    r = subprocess.run([sys.executable, "-m", "metacond", "push", str(run["run"]), "--repo-id", "no-slash"], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 2 and "--repo-id must be USER/NAME" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(MetacondError, match="neither a finished metacond run"):
        plan_push(PushArguments(path=str(run["dir"]), repo_id="a/b"))
