"""PCFG evaluations on cases with known answers, the lm-eval task, and the smoke study."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from metacond.data_builders.pcfg import PCFGInference, preset_grammar, sample
from metacond.eval_tasks import TASK_DIR
from metacond.eval_tasks.pcfg.grammar_accuracy import grammar_accuracy
from metacond.eval_tasks.pcfg.loss import evaluate_loss, model_sequence_nll
from metacond.eval_tasks.pcfg.probing import bayes_probe_accuracy, hidden_features, probe_accuracy
from metacond.eval_tasks.pcfg.prompts import PCFGLayout
from metacond.modeling.checkpoint import build_model
from metacond.modeling.tokenizer import build_pcfg_tokenizer


@pytest.fixture(scope="module")
def setup():
    g = preset_grammar("small")
    b = sample(g, 600, seed=5)
    return g, [list(map(int, s)) for s in b.as_lists()], b.metadata, PCFGInference(g)


def test_probe_reads_metadata_given_explicitly_and_not_noise(setup):
    g, T, M, inf = setup
    torch.manual_seed(0)
    model = build_model("tiny", build_pcfg_tokenizer(g), seed=3)
    split = np.tile([0, 0, 0, 1, 2], 200)[: len(T)]
    lengths = (1, 5)
    # Known answer 1: the prefix shows j itself, so a linear read-out exists (~100%).
    feats, valid = hidden_features(model, PCFGLayout(g), T, lengths, metadata=M, depth=g.depth)
    res = probe_accuracy(feats, valid, M, g.num_variants, split, lengths)
    for level in res["levels"]:
        assert level[0]["test_accuracy"] >= 0.95
    # Known answer 2: features independent of j give chance.
    rng = np.random.default_rng(0)
    noise = rng.normal(size=feats.shape).astype(np.float32)
    res = probe_accuracy(noise, valid, M, g.num_variants, split, lengths)
    assert np.mean([row["test_accuracy"] for level in res["levels"] for row in level]) < 0.62


def test_bayes_probe_accuracy_uses_exact_posterior(setup):
    g, T, M, inf = setup
    acc = bayes_probe_accuracy(inf, T, M, np.ones(len(T), bool), (1, "full"))
    # With no tokens it is the prior; with the full string the lowest level is identified.
    assert acc[4][1] > 0.95 and acc[4][1] >= acc[4][0]
    for d in range(g.depth):
        assert acc[d][1] >= 0.5


def test_loss_matches_a_direct_computation_and_bayes_is_a_floor(setup):
    g, T, M, inf = setup
    model = build_model("tiny", build_pcfg_tokenizer(g), seed=1)
    res = evaluate_loss(model, g, T[:40], M[:40].tolist(), 3, inf)
    layout = PCFGLayout(g)
    x = T[0]
    ids = torch.tensor([layout.prefix(M[0], 3) + layout.terminal_ids(x) + [layout.eos]])
    with torch.no_grad():
        lp = torch.log_softmax(model(ids).logits[0, :-1], -1).gather(-1, ids[0, 1:, None])[:, 0]
    direct = -lp[layout.prefix_len - 1:].sum().item()
    assert model_sequence_nll(model, layout, [x], [M[0]], 3)[0] == pytest.approx(direct, rel=1e-5)
    for cond in ("masked", "metadata"):
        assert res[cond]["model_loss"] > res[cond]["bayes_loss"] > 0
    assert res["metadata_gain"]["bayes"] > 0


def test_grammar_accuracy_counts_cyk_acceptance(setup):
    g, T, M, inf = setup
    model = build_model("tiny", build_pcfg_tokenizer(g), seed=2)  # untrained: emits junk
    res = grammar_accuracy(model, g, T, M, 0, lengths=(5,), n_prompts=20, inference=inf)
    row = res["rows"][0]
    assert row["n"] == 20 and 0.0 <= row["accuracy"] <= 1.0
    assert row["accuracy"] < 0.5


def _lmeval_fixture(tmp_path, metadata_depth=3):
    from metacond.data_builders.pcfg.dataset import PCFGDataConfig, build_pcfg_dataset
    from transformers import AutoTokenizer

    dd, out, _ = build_pcfg_dataset(PCFGDataConfig(grammar="small", metadata_depth=metadata_depth, train_size=10, validation_size=2, test_size=12,
                                                   bayes_sample=0, output_dir=str(tmp_path / "ds")), progress=False)
    return dd, out, AutoTokenizer.from_pretrained(out / "tokenizer")


def test_lmeval_tasks_validate():
    r = subprocess.run([sys.executable, "-m", "lm_eval", "validate", "--tasks", "pcfg_loss_masked,pcfg_loss_metadata",
                        "--include_path", str(TASK_DIR / "pcfg_loss")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_lmeval_run_matches_our_loss(tmp_path):
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from metacond.data_builders.pcfg import Grammar

    dd, out, tok = _lmeval_fixture(tmp_path)
    g = Grammar.load(out / "grammar.json")
    model = build_model("tiny", tok, seed=4)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=4)
    tm = TaskManager(include_path=str(TASK_DIR / "pcfg_loss"), metadata={"data_file": str(out / "lmeval" / "test.jsonl")})
    res = lm_eval.simple_evaluate(model=lm, tasks=["pcfg_loss_masked", "pcfg_loss_metadata"], task_manager=tm, bootstrap_iters=0)
    T = [list(x) for x in dd["test"]["terminals"]]
    M = [list(m) for m in dd["test"]["metadata"]]
    ntok = sum(len(t) + 1 for t in T)
    layout = PCFGLayout(g)
    ours_masked = model_sequence_nll(model, layout, T, None, 0).sum() / ntok
    ours_meta = model_sequence_nll(model, layout, T, M, 3).sum() / ntok
    assert res["results"]["pcfg_loss_masked"]["nll_per_token,none"] == pytest.approx(ours_masked, rel=1e-4)
    assert res["results"]["pcfg_loss_metadata"]["nll_per_token,none"] == pytest.approx(ours_meta, rel=1e-4)
    assert ours_masked != pytest.approx(ours_meta, rel=1e-6)  # the condition really changes the context


def test_smoke_study_end_to_end(tmp_path):
    from metacond.eval_tasks.pcfg.study import StudyArguments, run_study

    out = run_study(StudyArguments(preset="smoke", output_dir=str(tmp_path / "study")))
    r = json.loads((out / "results.json").read_text())
    assert sorted(r["models"]) == ["0", "1", "3", "5"]
    for k in ("probing.png", "grammar_accuracy.png", "loss.png", "report.md"):
        assert (out / k).stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "## Findings" in report and len(r["findings"]) >= 4
    assert all(f["verdict"] in ("reproduced", "partly reproduced", "not reproduced", "inconclusive") for f in r["findings"])
    # Bayes curves come from the inside algorithm and dominate chance at full length on the lowest level.
    assert r["bayes"]["probing"][4][-1] > r["bayes"]["chance"][4]
    # Cached: a rerun trains and evaluates nothing new.
    mtimes = {p: p.stat().st_mtime for p in (out / "evals").glob("dm*.json")}
    run_study(StudyArguments(preset="smoke", output_dir=str(tmp_path / "study")))
    assert mtimes == {p: p.stat().st_mtime for p in (out / "evals").glob("dm*.json")}
