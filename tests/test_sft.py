"""metacond sft: real TRL runs on a tiny Llama (LoRA and full), data layouts, metadata prefix, LoRA merge."""

import json

import pytest
import torch

from metacond import MetacondError
from metacond.training.sft import SFTArguments, build_sft_dataset, metadata_block, parse_args, run_sft, to_conversation


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A news build and an (untrained) tiny model with the build's tokenizer, saved like a pretrain run."""
    from news_fixture import small_build
    from transformers import AutoTokenizer

    from metacond.modeling.checkpoint import build_model

    d = tmp_path_factory.mktemp("sft")
    news = small_build(d, per_country=6)
    tok = AutoTokenizer.from_pretrained(news / "tokenizer")
    build_model("tiny", tok, seed=0).save_pretrained(d / "base")
    tok.save_pretrained(d / "base")
    return d, news


def test_layouts_and_bad_rows():
    conv, _ = to_conversation({"instruction": "Name the capital.", "input": "Kenya", "output": "Nairobi"}, 1)
    assert conv["prompt"] == [{"role": "user", "content": "Name the capital.\n\nKenya"}] and conv["completion"][0]["content"] == "Nairobi"
    conv, _ = to_conversation({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, 2)
    assert len(conv["prompt"]) == 2 and conv["completion"] == [{"role": "assistant", "content": "a"}]
    assert to_conversation({"prompt": "p", "completion": "c"}, 3)[0]["completion"][0]["content"] == "c"
    assert "last message must be the assistant" in to_conversation({"messages": [{"role": "user", "content": "q"}]}, 4)[1]
    assert "no messages, instruction/output" in to_conversation({"text": "x"}, 5)[1]
    assert metadata_block({"country": "Nigeria", "url": "https://www.punchng.com/a"}) == "URL: punchng.com\nCOUNTRY: ng\nCONTINENT: africa\n\n"
    assert metadata_block({"country": "Atlantis"}) is None


def test_instruction_file_with_metadata_prefix_counts_skips(base, tmp_path):
    d, _ = base
    rows = [{"instruction": "Which city?", "output": "Lagos", "country": "ng"}, {"instruction": "x", "output": ""},
            {"prompt": "Where?", "completion": "Cork"}]
    (tmp_path / "i.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds, info = build_sft_dataset(SFTArguments(model=str(d / "base"), dataset=str(tmp_path / "i.jsonl"), metadata_prefix=True))
    assert len(ds) == 2 and info["skipped"] == 1 and info["without_metadata_prefix"] == 1 and "row 2" in info["skipped_examples"][0]
    # A row without a URL gets its country's first listed outlet, as the MCQ tasks render it (one metadata renderer).
    assert ds[0]["prompt"][0]["content"] == "URL: punchng.com\nCOUNTRY: ng\nCONTINENT: africa\n\nWhich city?"
    with pytest.raises(MetacondError, match="give --dataset"):
        SFTArguments(model="m")


def test_metadata_prefix_takes_the_template_and_url_style_the_model_pretrained_on(base, tmp_path):
    """A model pretrained on the `country` template with full URLs gets `COUNTRY: ng` blocks, not the `full` default; a
    flag that contradicts its build, or a model trained without metadata, is refused in one line."""
    import shutil

    from metacond.modeling.summary import TrainingSummary

    d, _ = base
    (tmp_path / "i.jsonl").write_text(json.dumps({"instruction": "Which city?", "output": "Lagos", "country": "ng"}) + "\n")

    def model(template: str) -> str:
        m = tmp_path / template
        shutil.copytree(d / "base", m)
        TrainingSummary(recipe={}, model={"parameters": 1}, data={}, tokens_seen={"input_tokens": 1},
                        metadata_scheme={"builder": {"config": {"url_style": "full"}, "template": template}}, loss_curve=[],
                        final_train_loss=None, wall_time_seconds=0.0).save(m)
        return str(m)

    ds, _ = build_sft_dataset(SFTArguments(model=model("country"), dataset=str(tmp_path / "i.jsonl"), metadata_prefix=True))
    assert ds[0]["prompt"][0]["content"] == "COUNTRY: ng\n\nWhich city?"
    with pytest.raises(MetacondError, match="--metadata_template full contradicts the model's training build"):
        build_sft_dataset(SFTArguments(model=str(tmp_path / "country"), dataset=str(tmp_path / "i.jsonl"), metadata_prefix=True,
                                       metadata_template="full"))
    with pytest.raises(MetacondError, match="pretrained without metadata"):
        build_sft_dataset(SFTArguments(model=model("none"), dataset=str(tmp_path / "i.jsonl"), metadata_prefix=True))


def _args(d, news, out, *extra):
    return parse_args(["--model", str(d / "base"), "--news_build", str(news / "global" / "full"), "--output_dir", str(out), "--max_steps", "30",
                       "--per_device_train_batch_size", "8", "--learning_rate", "5e-3", "--logging_steps", "5", "--report_to", "none",
                       "--save_strategy", "no", "--disable_tqdm", "true", "--max_length", "256", *extra])


def test_lora_sft_learns_and_merge_matches_adapter(base, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d, news = base
    args, cfg = _args(d, news, tmp_path / "lora", "--use_lora", "true", "--metadata_prefix", "true", "--learning_rate", "1e-2")
    res = run_sft(args, cfg)
    s = res["summary"]
    assert s["data"]["rows"] > 50 and s["data"]["without_metadata_prefix"] == 0
    assert sum(s["losses"][-2:]) / 2 < sum(s["losses"][:2]) / 2 - 0.25, s["losses"]  # the loss falls (random base, rank-16 adapter)
    out = tmp_path / "lora"
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert type(merged).__name__ == "LlamaForCausalLM" and not (out / "adapter_config.json").exists()
    adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(d / "base"), out / "adapter").eval()
    tok = AutoTokenizer.from_pretrained(out)
    text = tok.apply_chat_template([{"role": "user", "content": "COUNTRY: ng\n\nWhich country is this news article from?"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text.startswith("<bos>### User:\nCOUNTRY: ng") and text.endswith("### Assistant:\n")
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a, b = adapter(ids).logits, merged.eval()(ids).logits
    assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
    assert not torch.allclose(a, AutoModelForCausalLM.from_pretrained(d / "base").eval()(ids).logits, atol=1e-3)  # the adapter changed something


def test_full_sft_completion_only(base, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    d, news = base
    args, cfg = _args(d, news, tmp_path / "full", "--max_steps", "8", "--learning_rate", "1e-3")
    res = run_sft(args, cfg)
    assert res["summary"]["lora"] is None and len(res["summary"]["losses"]) >= 1
    assert (tmp_path / "full" / "model.safetensors").is_file()
    # The loss covers the answer only: TRL folds its completion mask into labels (-100 on the prompt).
    ds, _ = build_sft_dataset(args)
    tok = AutoTokenizer.from_pretrained(tmp_path / "full")
    tr = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tmp_path / "full"), args=cfg, train_dataset=ds.select(range(4)), processing_class=tok)
    row = tr.train_dataset[0]
    mask = [int(lab != -100) for lab in row["labels"]]
    assert 0 < sum(mask) < len(mask) and mask[-1] == 1 and mask[0] == 0
    answer = tok.decode([i for i, m in zip(row["input_ids"], mask) if m])
    assert answer.strip().endswith(tok.eos_token) and ds[0]["completion"][0]["content"] in answer


@pytest.mark.parametrize("recipe", sorted((__import__("pathlib").Path(__file__).resolve().parents[1] / "training" / "recipes" / "localization" / "sft").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_sft_recipe_parses(recipe, base, tmp_path):
    import yaml

    d, news = base
    values = yaml.safe_load(recipe.read_text())
    args, cfg = parse_args(["--config", str(recipe), "--model", str(d / "base"), "--news_build", str(news / "global" / "full"),
                            "--output_dir", str(tmp_path / "o")])
    assert args.use_lora == values["use_lora"] and args.metadata_prefix == values["metadata_prefix"]
    assert cfg.learning_rate == values["learning_rate"] and (cfg.bf16 is False or torch.cuda.is_available())


def test_eval_split_dry_run_task_counts_and_a_short_run(base, tmp_path, capsys):
    from metacond.training.sft import main

    d, news = base
    common = ["--model", str(d / "base"), "--news_build", str(news / "global" / "full"), "--per_device_train_batch_size", "4", "--report_to", "none",
              "--save_strategy", "no", "--disable_tqdm", "true"]
    assert main([*common, "--output_dir", str(tmp_path / "dry"), "--dry_run", "true", "--eval_fraction", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "per task: country" in out and "headline" in out and "dry run: nothing trained" in out and "<bos>### User:" in out
    assert not (tmp_path / "dry" / "model.safetensors").exists()
    # 3 steps with the default logging interval (longer): the loss is still logged; the held-out rows give an eval loss.
    assert main([*common, "--output_dir", str(tmp_path / "short"), "--max_steps", "3", "--eval_fraction", "0.2"]) == 0
    out = capsys.readouterr().out
    s = json.loads((tmp_path / "short" / "sft_summary.json").read_text())
    assert s["first_loss"] is not None and s["eval_loss"] > 0 and "None" not in out and "eval loss" in out
    assert s["data"]["eval_rows"] > 0 and s["data"]["train_rows"] + s["data"]["eval_rows"] == s["data"]["rows"]
    assert (tmp_path / "short" / "loss_curve.png").stat().st_size > 3000
