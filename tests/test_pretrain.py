"""metacond pretrain: real tiny runs, loss masks, cooldown, resume, reload parity, packing, bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from news_fixture import build_news_fixture
from transformers import AutoModelForCausalLM, AutoTokenizer

from metacond import MetacondError
from metacond.training.collator import MetadataCollator, first_fit_rows
from metacond.training.pretrain import parse_args, run_pretraining
from metacond.training.schedule import MetadataSchedule

ROOT = Path(__file__).resolve().parents[1]


def args(*argv):
    return parse_args(list(argv))


@pytest.fixture(scope="module")
def pcfg_dir(tmp_path_factory):
    from metacond.data_builders.pcfg.dataset import PCFGDataConfig, build_pcfg_dataset

    out = tmp_path_factory.mktemp("pcfg") / "ds"
    build_pcfg_dataset(PCFGDataConfig(grammar="small", metadata_depth=3, metadata_fraction=1.0, train_size=600, validation_size=32,
                                      test_size=8, bayes_sample=0, output_dir=str(out)), progress=False)
    return out


@pytest.fixture(scope="module")
def news_dir(tmp_path_factory):
    return build_news_fixture(tmp_path_factory.mktemp("news") / "ds")


def tiny_run(dataset, out, *extra, callbacks=None):
    a = args("--dataset", str(dataset), "--output_dir", str(out), "--model_size", "tiny", "--per_device_train_batch_size", "8",
             "--learning_rate", "0.003", "--logging_steps", "5", "--save_steps", "10", "--disable_tqdm", "true", *extra)
    return run_pretraining(a, callbacks=callbacks)


def test_pcfg_run_learns_writes_summary_and_reloads(pcfg_dir, tmp_path):
    res = tiny_run(pcfg_dir, tmp_path / "run", "--max_steps", "30", "--eval_strategy", "steps", "--eval_steps", "15")
    out = Path(res["output_dir"])
    s = json.loads((out / "training_summary.json").read_text())
    losses = [h["loss"] for h in s["loss_curve"] if "loss" in h]
    assert losses[-1] < losses[0] - 0.5
    assert s["tokens_seen"]["input_tokens"] > 0 and 0 < s["tokens_seen"]["scored_tokens"] < s["tokens_seen"]["input_tokens"]
    assert s["tokens_seen"]["examples"] == 30 * 8
    assert s["metadata_scheme"]["mode"] == "mask" and s["hardware"]["world_size"] == 1
    # The validation split is scored at the end as well as every 15 steps; the last point of the curve is that score.
    v = s["validation"]
    assert v["split"] == "validation" and v["examples"] > 0 and v["loss"] == [h["eval_loss"] for h in s["loss_curve"] if "eval_loss" in h][-1]
    assert v["loss"] < losses[0]
    assert (out / "loss_curve.png").stat().st_size > 5000 and (out / "generation_config.json").exists()
    assert (out / "model.safetensors").exists()
    # Plain from_pretrained, no trust_remote_code, same logits as the trained weights in the last checkpoint.
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.use_cache
    ckpt = AutoModelForCausalLM.from_pretrained(out / "checkpoint-30")
    ids = torch.tensor([tok("<m0_1> <mask> <mask> <mask> <mask> t0 t1 t2")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ckpt(ids).logits)
    # A second identical command leaves the finished run alone.
    again = tiny_run(pcfg_dir, tmp_path / "run", "--max_steps", "30")
    assert again["status"].startswith("already finished")


def test_metadata_tokens_carry_zero_loss_weight(pcfg_dir, news_dir):
    from datasets import load_from_disk

    for d in (pcfg_dir, news_dir):
        ds = load_from_disk(str(d / "hf"))["train"].select(range(6))
        tok = AutoTokenizer.from_pretrained(d / "tokenizer")
        feats = [MetadataSchedule(mode="remove").apply(r, i) for i, r in enumerate(ds)]
        for packing in (False, True):
            batch = MetadataCollator(tok.pad_token_id, packing=packing)(feats)
            batch.pop("num_with_metadata"), batch.pop("num_examples")
            torch.manual_seed(0)
            from metacond.modeling.checkpoint import build_model

            model = build_model("tiny", tok)
            model.config.use_cache = False
            out = model(**{k: v for k, v in batch.items() if k != "labels"})
            logits = out.logits.detach().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1), ignore_index=-100)
            loss.backward()
            g = logits.grad.abs().sum(-1)  # [rows, len]: weight of each position's prediction
            # Position t predicts token t+1: every metadata token and every pad has exactly zero weight.
            flat_ids = batch["input_ids"]
            c = 0
            for r, row in enumerate(ds):
                L = len(row["input_ids"])
                if packing:
                    rr, off = 0, c
                else:
                    rr, off = r, 0
                for s, e in row["meta_spans"]:
                    for t in range(s, e):
                        assert g[rr, off + t - 1] == 0.0
                        assert flat_ids[rr, off + t] == row["input_ids"][t]
                assert g[rr, off + L - 2] > 0  # the <eos> prediction counts
                c += L
            if not packing:
                assert (g[:, :-1][batch["attention_mask"][:, 1:] == 0] == 0).all()


def test_cooldown_switches_at_the_right_step_and_keeps_lr_schedule(pcfg_dir, tmp_path):
    a = tiny_run(pcfg_dir, tmp_path / "cd", "--max_steps", "20", "--cooldown_fraction", "0.25")
    b = tiny_run(pcfg_dir, tmp_path / "plain", "--max_steps", "20")
    sa = json.loads((Path(a["output_dir"]) / "training_summary.json").read_text())
    sb = json.loads((Path(b["output_dir"]) / "training_summary.json").read_text())
    assert sa["metadata_scheme"]["cooldown_start_step"] == 15
    by_step = {s: (m, n) for s, m, n in sa["metadata_scheme"]["examples_with_metadata_by_step"]}
    assert sorted(by_step) == list(range(1, 21))
    for step, (m, n) in by_step.items():  # global_step after the update: steps 1..15 before, 16..20 in the cooldown
        assert n == 8 and (m == 8 if step <= 15 else m == 0), (step, m)
    assert all(m == 8 for _, m, _ in sb["metadata_scheme"]["examples_with_metadata_by_step"])
    lr = lambda s: [h["learning_rate"] for h in s["loss_curve"] if "learning_rate" in h]  # noqa: E731
    assert lr(sa) == lr(sb)


def test_killed_run_resumes_and_matches(pcfg_dir, tmp_path, stop_at_step):
    full = tiny_run(pcfg_dir, tmp_path / "full", "--max_steps", "20")
    with pytest.raises(KeyboardInterrupt):
        tiny_run(pcfg_dir, tmp_path / "killed", "--max_steps", "20", callbacks=[stop_at_step(15)])
    assert not (tmp_path / "killed" / "training_summary.json").exists() and not (tmp_path / "killed" / "model.safetensors").exists()
    resumed = tiny_run(pcfg_dir, tmp_path / "killed", "--max_steps", "20")
    s_full = json.loads((Path(full["output_dir"]) / "training_summary.json").read_text())
    s_res = json.loads((Path(resumed["output_dir"]) / "training_summary.json").read_text())
    assert s_res["resumed_from"].endswith("checkpoint-10")
    last = lambda s: [h["loss"] for h in s["loss_curve"] if h.get("step") == 20 and "loss" in h][0]  # noqa: E731
    assert last(s_res) == pytest.approx(last(s_full), rel=1e-4)
    assert s_res["tokens_seen"]["examples"] == s_full["tokens_seen"]["examples"] == 160
    m1 = AutoModelForCausalLM.from_pretrained(full["output_dir"])
    m2 = AutoModelForCausalLM.from_pretrained(resumed["output_dir"])
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p1, p2, rtol=1e-4, atol=1e-5)


def test_news_style_model_with_packing_and_field_dropout(news_dir, tmp_path):
    res = tiny_run(news_dir, tmp_path / "news", "--max_steps", "25", "--packing", "true", "--block_size", "256",
                   "--metadata_field_dropout", "0.5", "--cooldown_fraction", "0.2")
    s = res["summary"]
    losses = s.train_losses()
    assert losses[-1] < losses[0] - 0.5 and s.metadata_scheme["mode"] == "remove"
    steps = s.metadata_scheme["examples_with_metadata_by_step"]
    assert all(m == 0 for st, m, _ in steps if st > 20) and sum(m for st, m, _ in steps if st <= 20) > 0


def test_packed_rows_never_attend_across_documents(news_dir):
    from datasets import load_from_disk

    from metacond.modeling.checkpoint import build_model

    tok = AutoTokenizer.from_pretrained(news_dir / "tokenizer")
    rows = load_from_disk(str(news_dir / "hf"))["train"].select(range(5))
    feats = [{k: r[k] for k in ("input_ids", "labels", "attention_mask")} for r in rows]
    model = build_model("tiny", tok, seed=1)
    model.config.use_cache = False
    packed = MetadataCollator(tok.pad_token_id, packing=True, block_size=200)(feats)
    with torch.no_grad():
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"]).logits
        where = first_fit_rows([len(f["input_ids"]) for f in feats], 200)
        for f, (r, c) in zip(feats, where):
            n = len(f["input_ids"])
            alone = model(input_ids=torch.tensor([f["input_ids"]])).logits[0]
            torch.testing.assert_close(logits[r, c:c + n], alone, rtol=1e-4, atol=1e-4)
            assert (packed["position_ids"][r, c:c + n] == torch.arange(n)).all()


def test_packing_fills_rows_whatever_the_batch_order():
    # Documents a little longer than a block: arrival-order filling pads about every other row.
    width = 256
    feats = [{"input_ids": [5] * n, "labels": [5] * n} for n in [288, 40, 300, 200, 288, 17, 256, 100] * 4]
    out = MetadataCollator(0, packing=True, block_size=width)(feats)
    real = sum(len(f["input_ids"]) for f in feats)
    assert (out["labels"] != -100).sum() == real - sum(-(-len(f["input_ids"]) // width) for f in feats)  # first label of each piece
    assert real / out["input_ids"].numel() >= 0.95
    assert out["num_examples"].sum() == len(feats) and (out["position_ids"][:, 0] == 0).all()
    where = first_fit_rows([256, 10, 250, 6], 256)
    assert where == [(0, 0), (2, 0), (1, 0), (1, 250)]


def test_schedule_is_deterministic_and_per_field():
    ex = {"input_ids": list(range(10)), "labels": [-100] * 4 + list(range(4, 10)), "attention_mask": [1] * 10, "meta_spans": [[1, 2], [2, 3], [3, 4]]}
    sch = MetadataSchedule(fraction=1.0, field_dropout=[0.5], mode="remove", seed=3)
    kept = [len(sch.apply(ex, p)["input_ids"]) for p in range(200)]
    assert kept == [len(sch.apply(ex, p)["input_ids"]) for p in range(200)]
    assert set(kept) == {7, 8, 9, 10}
    assert abs(np.mean(kept) - 8.5) < 0.3
    m = MetadataSchedule(fraction=0.0, mode="mask", mask_token_id=99).apply(ex, 0)
    assert m["input_ids"][1:4] == [99, 99, 99] and m["labels"][1:4] == [-100] * 3 and not m["has_metadata"]


def test_streaming_run(pcfg_dir, tmp_path):
    res = tiny_run(pcfg_dir, tmp_path / "stream", "--max_steps", "6", "--streaming", "true")
    assert res["summary"].tokens_seen["examples"] == 48


@pytest.mark.parametrize("make,msg", [
    (lambda d, t: ("--dataset", str(t / "nocols.parquet")), r"lacks column\(s\) labels"),
    (lambda d, t: ("--dataset", str(t / "misaligned.parquet")), "not aligned with input_ids"),
    (lambda d, t: ("--dataset", str(t / "empty.parquet")), "is empty"),
    (lambda d, t: ("--dataset", str(d), "--resume_from_checkpoint", str(t / "nope")), "does not exist"),
    (lambda d, t: ("--dataset", str(d), "--init_from", str(t / "small_vocab")), "tokenizer has"),
    (lambda d, t: ("--dataset", str(d), "--model_size", "7b"), "unknown model size"),
    (lambda d, t: ("--dataset", str(t / "missing_dir")), "not found"),
])
def test_bad_input_one_line_and_nothing_written(pcfg_dir, tmp_path, make, msg):
    import pandas as pd

    pd.DataFrame({"input_ids": [[1, 2, 3]], "attention_mask": [[1, 1, 1]]}).to_parquet(tmp_path / "nocols.parquet")
    pd.DataFrame({"input_ids": [[1, 2, 3]], "labels": [[1, 2]], "attention_mask": [[1, 1, 1]]}).to_parquet(tmp_path / "misaligned.parquet")
    pd.DataFrame({"input_ids": [[1]], "labels": [[1]], "attention_mask": [[1]]}).iloc[:0].to_parquet(tmp_path / "empty.parquet")
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(vocab_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)).save_pretrained(tmp_path / "small_vocab")
    argv = make(pcfg_dir, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(MetacondError, match=msg) as e:
        tiny_run(*argv[1:2], out, *argv[2:], "--max_steps", "2", "--tokenizer", str(pcfg_dir / "tokenizer"))
    assert "\n" not in str(e.value)
    assert not (out / "training_summary.json").exists() and not (out / "model.safetensors").exists()


def test_wrong_type_in_recipe_is_one_line(tmp_path):
    (tmp_path / "r.yaml").write_text("model_size: tiny\nlearning_rate: fast\n")
    with pytest.raises(MetacondError, match="learning_rate") as e:
        parse_args(["--config", str(tmp_path / "r.yaml"), "--output_dir", str(tmp_path / "o")])
    assert "\n" not in str(e.value)
    (tmp_path / "u.yaml").write_text("model_size: tiny\nlearnin_rate: 0.1\n")
    with pytest.raises(MetacondError, match="unknown keys learnin_rate"):
        parse_args(["--config", str(tmp_path / "u.yaml")])


# SFT recipes: tests/test_sft.py; data/ (news builds): tests/test_news.py.
RECIPES = sorted(r for r in (ROOT / "training" / "recipes").rglob("*.yaml") if "sft" not in r.parts and "data" not in r.parts)


def test_resume_skips_an_incomplete_checkpoint_and_names_it(pcfg_dir, tmp_path, stop_at_step, capsys):
    import shutil

    from metacond.training.checkpoints import checkpoint_problem

    run = lambda *extra, **kw: tiny_run(pcfg_dir, tmp_path / "k", "--max_steps", "20", "--save_steps", "5", *extra, **kw)  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        run(callbacks=[stop_at_step(12)])
    good = tmp_path / "k" / "checkpoint-10"
    assert checkpoint_problem(good) is None
    # What a kill during a save leaves, one file at a time, on copies of the complete checkpoint.
    cuts = {"trainer_state.json": "trainer_state.json is cut short", "optimizer.pt": "optimizer.pt is empty or cut short",
            "model.safetensors": "model.safetensors is"}
    for name, why in cuts.items():
        bad = tmp_path / f"bad-{name}"
        shutil.copytree(good, bad)
        f = bad / name
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        assert checkpoint_problem(bad).startswith(why), name
    (tmp_path / "bad-optimizer.pt" / "optimizer.pt").unlink()
    assert checkpoint_problem(tmp_path / "bad-optimizer.pt") == "no optimizer.pt"
    assert checkpoint_problem(tmp_path / "bad-optimizer.pt", needs_optimizer=False) is None
    # The newest checkpoint cut short: strict stops in one line; otherwise the run resumes from the previous one, which it names.
    w = good / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(MetacondError, match=r"checkpoint-10 cannot be resumed from \(model.safetensors is [\d,]+ bytes, its header says"):
        run("--strict_resume", "true")
    capsys.readouterr()
    res = run()
    assert "resume: skipping checkpoint-10 (model.safetensors is" in capsys.readouterr().out
    s = json.loads((Path(res["output_dir"]) / "training_summary.json").read_text())
    assert s["resumed_from"].endswith("checkpoint-5") and s["tokens_seen"]["examples"] == 160


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(r.relative_to(ROOT / "training" / "recipes")) for r in RECIPES])
def test_every_recipe_parses_and_dry_runs(recipe, pcfg_dir, news_dir, tmp_path, capsys):
    import yaml

    values = yaml.safe_load(recipe.read_text())
    extra = ["--output_dir", str(tmp_path / "o"), "--dry_run", "true"]
    if values.get("bf16") and not torch.cuda.is_available():
        extra += ["--bf16", "false"]  # GPU recipes: TrainingArguments refuses bf16 on a CPU-only machine
    if values.get("pcfg_grammar"):
        extra += ["--dataset", str(pcfg_dir)]  # the recipe's full-size build is not needed to check it
    else:
        extra += ["--dataset", str(news_dir)]
    if values.get("resume_from_checkpoint"):
        (tmp_path / "ckpt").mkdir()  # MeCo's stage 2 resumes stage 1's checkpoint; any directory passes the check
        extra += ["--resume_from_checkpoint", str(tmp_path / "ckpt")]
    a = parse_args(["--config", str(recipe), *extra])
    res = run_pretraining(a)
    plan = res["plan"]
    assert plan["max_steps"] == values["max_steps"] and plan["model_size"] == values["model_size"]
    if values.get("cooldown_fraction"):
        assert plan["cooldown_start_step"] == values["max_steps"] - round(values["cooldown_fraction"] * values["max_steps"])
    assert not (tmp_path / "o").exists()


def test_accelerate_configs_and_module_entry_point():
    import subprocess
    import sys

    import yaml

    for f in (ROOT / "training" / "accelerate").glob("*.yaml"):
        cfg = yaml.safe_load(f.read_text())
        assert cfg["distributed_type"] in ("MULTI_GPU", "FSDP", "DEEPSPEED") and cfg["mixed_precision"] == "bf16"
    r = subprocess.run([sys.executable, "-m", "metacond.training.pretrain", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "accelerate launch" in r.stdout and "--cooldown_fraction" in r.stdout
