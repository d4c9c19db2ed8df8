"""PCFG evaluations on cases with known answers, the lm-eval task, and the smoke study."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from metacond.data_builders.pcfg import PCFGInference, preset_grammar, sample
from metacond.data_builders.pcfg.inference import bayes_classifier_correct, bayes_table
from metacond.eval_tasks import TASK_DIR
from metacond.eval_tasks.pcfg.grammar_accuracy import grammar_accuracy
from metacond.eval_tasks.pcfg.loss import evaluate_loss, model_sequence_nll
from metacond.eval_tasks.pcfg.probing import hidden_features, probe_accuracy, prompt_groups, prompt_split
from metacond.eval_tasks.pcfg.prompts import PCFGLayout
from metacond.eval_tasks.pcfg.results import PcfgStudyResults
from metacond.modeling.checkpoint import build_model
from metacond.modeling.tokenizer import build_pcfg_tokenizer


@pytest.fixture(scope="module")
def setup():
    g = preset_grammar("cpu")
    b = sample(g, 800, seed=5)
    return g, [list(map(int, s)) for s in b.as_lists()], b.metadata, PCFGInference(g)


def _split(T, lengths):
    return prompt_split(T, lengths), [prompt_groups(T, L) for L in lengths]


def test_prompt_split_keeps_every_prompt_on_one_side(setup):
    g, T, M, inf = setup
    lengths = (1, 2, 5, "full")
    split, groups = _split(T, lengths)
    for li, L in enumerate(lengths):
        train = {tuple(T[i][: L if L != "full" else len(T[i])]) for i in np.where(split[li] == 0)[0]}
        test = {tuple(T[i][: L if L != "full" else len(T[i])]) for i in np.where(split[li] == 1)[0]}
        assert train and test and not (train & test), f"L={L}: a prompt string is in both splits"
        assert 0.3 < (split[li] == 1).mean() < 0.6
        # groups name prompts: equal ids <=> equal prompt strings
        for gid in np.unique(groups[li])[:20]:
            members = np.where(groups[li] == gid)[0]
            assert len({tuple(T[i][: L if L != "full" else len(T[i])]) for i in members}) == 1


def test_probe_reads_metadata_given_explicitly_on_unseen_prompts_and_not_noise(setup):
    g, T, M, inf = setup
    torch.manual_seed(0)
    model = build_model("tiny", build_pcfg_tokenizer(g), seed=3)
    lengths = (5, 20)
    split, groups = _split(T, lengths)
    # Known answer 1: the prefix shows j itself, so a linear read-out exists on prompts the probe never saw (~100%).
    feats, valid = hidden_features(model, PCFGLayout(g), T, lengths, metadata=M, depth=g.depth)
    res = probe_accuracy(feats, valid, M, g.num_variants, split, groups, lengths)
    for level in res["levels"]:
        assert level[0]["test_accuracy"] >= 0.95
        assert level[0]["n_test_prompts"] > 10
    # Known answer 2: features independent of j give chance.
    rng = np.random.default_rng(0)
    noise = rng.normal(size=feats.shape).astype(np.float32)
    res = probe_accuracy(noise, valid, M, g.num_variants, split, groups, lengths)
    assert np.mean([row["test_accuracy"] for level in res["levels"] for row in level]) < 0.62


def test_bayes_classifier_uses_exact_posterior(setup):
    g, T, M, inf = setup
    ok = bayes_classifier_correct(inf, T, M, (0, "full"))
    acc = (ok >= 0).sum(-1)
    acc = ok.clip(0).sum(-1) / acc
    # With no tokens it is the prior (one class for every item); with the full string the lowest level is identified.
    assert acc[4][1] > 0.95 and acc[4][1] > acc[4][0]
    for d in range(g.depth):
        assert acc[d][1] >= acc[d][0] - 0.05


def test_bayes_table_marks_informative_cells():
    t = bayes_table(preset_grammar("cpu"), 300, (1, 5, 20))
    chance = t["chance"]
    for d, row in enumerate(t["accuracy"]):
        for li, a in enumerate(row):
            assert t["informative"][d][li] == (a >= chance[d] + 0.10 and a <= 0.97)
    # The cpu grammar's design goal: >= 3 levels readable above chance from 5 terminals (here on a small sample).
    assert sum(row[1] >= chance[d] + 0.08 for d, row in enumerate(t["accuracy"])) >= 3


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
    from transformers import AutoTokenizer

    from metacond.data_builders.pcfg.dataset import PCFGDataConfig, build_pcfg_dataset

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
    tm = TaskManager(include_defaults=False, include_path=str(TASK_DIR / "pcfg_loss"), metadata={"data_file": str(out / "lmeval" / "test.jsonl")})
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


@pytest.mark.slow
def test_smoke_study_end_to_end(tmp_path):
    from metacond.studies.pcfg.findings import LOSS_MARGIN_SHARE
    from metacond.studies.pcfg.study import StudyArguments, run_study

    out = run_study(StudyArguments(preset="smoke", output_dir=str(tmp_path / "study")))
    r = json.loads((out / "results.json").read_text())
    assert sorted(r["models"]) == ["0", "5"] and r["training_seeds"] == [0, 1]
    # Where the demo's minutes go: every stage and each model's evaluation parts are timed.
    assert set(r["stage_seconds_this_invocation"]) == {"data", "train", "references", "evaluate"}
    assert all(set(m["seconds"]) == {"loss", "probing", "grammar"} for runs in r["models"].values() for m in runs)
    # Two runs per D_M, trained side by side: different seeds give different models.
    assert [len(r["models"][d]) for d in ("0", "5")] == [2, 2]
    assert r["models"]["0"][0]["loss"]["masked"]["model_loss"] != r["models"]["0"][1]["loss"]["masked"]["model_loss"]
    for k in ("probing.png", "grammar_accuracy.png", "loss.png", "loss_by_position.png", "report.md", "verdicts.txt"):
        assert (out / k).stat().st_size > 500
    f = {x["finding"]: x for x in r["findings"]}
    # The verdicts are recomputable from the per-item evaluations: the loss non-inferiority test is the
    # D_M=5 seed mean minus the D_M=0 seed mean of the masked loss per token over the same sequences.
    ev = {(d, s): json.loads((out / "evals" / f"dm{d}-seed{s}.json").read_text())["loss"]["items"] for d in (0, 5) for s in (0, 1)}
    per_run = {k: np.sum(e["model_masked"]) / np.sum(e["tokens"]) for k, e in ev.items()}
    harm = (per_run[5, 0] + per_run[5, 1] - per_run[0, 0] - per_run[0, 1]) / 2
    ni = next(x for k, x in f.items() if k.startswith("Without metadata"))
    bayes_gain = next(x for k, x in f.items() if k.startswith("Metadata lowers"))["details"]["bayes_gain"]
    assert ni["difference"]["estimate"] == pytest.approx(harm, rel=1e-9) and ni["threshold"] == pytest.approx(LOSS_MARGIN_SHARE * bayes_gain)
    assert ni["difference"]["ci_low"] <= harm <= ni["difference"]["ci_high"] and ni["difference"]["seeds"] == [2, 2]
    sd0 = np.std([per_run[0, 0], per_run[0, 1]], ddof=1)
    assert ni["difference"]["seed_sd"][1] == pytest.approx(sd0, rel=1e-9) and ni["source"]
    # Cells that enter the probing verdict are exactly the informative ones, and an empty set gives no verdict.
    short = next(x for k, x in f.items() if "short prompts" in k and "probing" in k)
    informative = {c["name"] for c in r["probe_cells"] if c["informative"] and c["L"] not in ("full",) and int(c["L"]) <= 5}
    assert set(short["cells"]) == informative
    # An empty cell set gives no verdict, and only an empty one says so.
    assert (not informative) == short["reason"].startswith("no informative")
    # Cached: a rerun trains and evaluates nothing new.
    mtimes = {p: p.stat().st_mtime for p in (out / "evals").glob("dm*.json")}
    assert len(mtimes) == 4
    run_study(StudyArguments(preset="smoke", output_dir=str(tmp_path / "study")))
    assert mtimes == {p: p.stat().st_mtime for p in (out / "evals").glob("dm*.json")}
    # One run per arm: between-model claims cannot be definite; the within-model claim still can.
    one = run_study(StudyArguments(preset="smoke", output_dir=str(tmp_path / "one"), seeds=1, workers=1))
    for x in json.loads((one / "results.json").read_text())["findings"]:
        if not x["finding"].startswith("Metadata lowers"):
            assert x["verdict"] == "inconclusive", x


def test_study_metadata_bytes_are_the_same_at_train_and_test(tmp_path):
    """For every D_M, the prefix a training row shows (one build, the study's schedule) is byte for byte the prefix the evaluations render."""
    from metacond.data_builders.pcfg.dataset import PCFGDataConfig, build_pcfg_dataset
    from metacond.studies.pcfg.study import PRESETS, base_recipe, recipe_for
    from metacond.training.schedule import MetadataSchedule

    g = preset_grammar("cpu")
    dd, out, _ = build_pcfg_dataset(PCFGDataConfig(grammar="cpu", metadata_depth=g.depth, train_size=200, validation_size=2, test_size=2,
                                                   bayes_sample=0, output_dir=str(tmp_path / "ds")), progress=False)
    layout = PCFGLayout(g)
    base = base_recipe(PRESETS["smoke"], out, 0, None)
    rows = dd["train"]
    assert 50 < sum(rows["has_metadata"]) < 150
    for depth in (0, 1, 3, 5):
        recipe = recipe_for(base, depth, g.depth, tmp_path / f"dm{depth}")
        meta, train = recipe.metadata, recipe.training
        assert train.output_dir.endswith(f"dm{depth}")
        sched = MetadataSchedule(fraction=meta.metadata_fraction, field_dropout=meta.metadata_field_dropout, mode=meta.metadata_mode,
                                 mask_token_id=layout.mask, seed=train.seed)
        for i in range(len(rows)):
            ex = sched.apply(rows[i], i)
            shown = rows[i]["has_metadata"] and depth > 0
            expected = layout.prefix(rows[i]["metadata"], depth) if shown else layout.prefix(None, 0)
            assert ex["input_ids"][: layout.prefix_len] == expected, (depth, i)
            assert ex["has_metadata"] == shown
            assert ex["input_ids"][layout.prefix_len:] == rows[i]["input_ids"][layout.prefix_len:]


def test_per_token_losses_add_up(setup):
    """Bayes per-token losses sum to -log p(x); the model's early-position sum matches a direct slice."""
    from metacond.eval_tasks.pcfg.loss import EARLY_POSITIONS, bayes_token_nll, model_token_nll

    g, T, M, inf = setup
    seqs = T[:15]
    per_tok = bayes_token_nll(inf, seqs)
    assert np.allclose([x.sum() for x in per_tok], -inf.log_prob(seqs), rtol=1e-6)
    assert all(len(x) == len(t) + 1 for x, t in zip(per_tok, seqs))
    model = build_model("tiny", build_pcfg_tokenizer(g), seed=6)
    res = evaluate_loss(model, g, seqs, M[:15].tolist(), 2, inf, bayes_tokens=per_tok)
    mt = model_token_nll(model, PCFGLayout(g), seqs, None, 0)
    assert np.allclose(res["items"]["model_masked_early"], [x[:EARLY_POSITIONS].sum() for x in mt])
    assert np.allclose(res["items"]["model_masked"], [x.sum() for x in mt])
    assert len(res["masked"]["excess_by_position"]) == 40


def _synthetic_results(deficit: float, rng, seeds: int = 2) -> PcfgStudyResults:
    """Two arms' per-item evaluations (``seeds`` runs each) with a planted short-prompt probe deficit of D_M=5 (negative: reversed).
    Runs of one arm differ by training noise: each run flips 1% of its answers at random."""
    n, lengths = 3000, ["5", "20"]
    groups = [np.arange(n) // 2, np.arange(n)]  # at L=5 pairs of sequences share a prompt
    bayes = np.zeros((2, 2, n), np.int8)
    bayes[:] = (rng.random((2, 2, n)) < 0.8)
    models = {}
    base = rng.random((2, 2, n)) < 0.75
    idx = np.arange(1500, n)
    for dm in (0, 5):
        arm = base[:, :, idx].copy()
        if dm == 5 and deficit > 0:
            arm[:, 0] &= ~(rng.random((2, len(idx))) < deficit / 0.75)  # lose some right answers
        elif dm == 5:
            arm[:, 0] |= rng.random((2, len(idx))) < -deficit / 0.25  # gain some wrong ones
        runs = []
        for _ in range(seeds):
            c_all = arm ^ (rng.random(arm.shape) < 0.01)
            levels = [[{"L": lengths[li], "test_accuracy": float(c_all[d, li].mean()), "n_train_prompts": 500, "test_se": 0.01,
                        "last_layer_accuracy": float(c_all[d, li].mean()), "items": {"index": idx.tolist(), "correct": c_all[d, li].astype(int).tolist()}}
                       for li in range(2)] for d in range(2)]
            tok = [20] * 200
            loss_items = {"tokens": tok, "model_masked": (15 + rng.normal(0, 1, 200)).tolist(), "bayes_masked": [12.0] * 200,
                          "model_masked_early": (6 + rng.normal(0, 0.3, 200)).tolist(), "model_masked_by_position": [[0.5] * 40] * 200}
            if dm:
                loss_items |= {"model_metadata": (14 + rng.normal(0, 1, 200)).tolist(), "bayes_metadata": [11.0] * 200}
            runs.append({"probing": {"levels": levels}, "loss": {"items": loss_items, "masked": {"model_loss": 0.7, "bayes_loss": 0.6, "excess_loss": 0.1, "excess_loss_se": 0.01}},
                         "grammar_masked": {"rows": []}})
        models[str(dm)] = runs
    return PcfgStudyResults(preset="synthetic", preset_config={}, grammar="synthetic", metadata_depths=[0, 5], seed=0, training_seeds=list(range(seeds)),
                            bayes={"probe_correct": bayes.tolist(), "probe_groups": [g.tolist() for g in groups], "chance": [0.5, 0.5],
                                   "lengths": lengths, "unigram_loss": 1.5}, models=models, training={})


@pytest.mark.parametrize("deficit,expected", [(0.08, "reproduced"), (-0.08, "contradicted")])
def test_findings_on_planted_short_prompt_deficits(deficit, expected):
    from metacond.studies.pcfg.findings import findings

    r = _synthetic_results(deficit, np.random.default_rng(0))
    short = next(v for v in findings(r) if "short prompts" in v.finding and "probing" in v.finding)
    assert short.cells == ["d=0, L=5", "d=1, L=5"]
    assert short.verdict == expected, short.summary()
    # The prompt clusters (pairs) are what is resampled; both arms' seeds enter the interval.
    assert short.difference.items == 750 and short.difference.seeds == (2, 2)


def test_one_run_per_arm_never_gives_a_between_model_word():
    from metacond.studies.pcfg.findings import findings

    r = _synthetic_results(0.08, np.random.default_rng(0), seeds=1)
    short = next(v for v in findings(r) if "short prompts" in v.finding and "probing" in v.finding)
    assert short.verdict == "inconclusive" and "one run" in short.reason


@pytest.mark.slow
def test_two_seeds_of_one_configuration_rarely_read_as_a_difference(tmp_path):
    """Four real tiny trainings of the *same* configuration (D_M=0, seeds 0-3), split every way into two 'arms' of two seeds.
    The seeded interval is a 5%-level test with ~3 degrees of freedom, so one split in three may still come out significant
    (the first run of this test: seeds {0,1} vs {2,3}, +0.033 nats/token); two or more would mean the interval is miscalibrated.
    Every split's seeded interval is much wider than the item-level one."""
    from metacond.eval_tasks.stats import paired_difference, seeded_difference, superiority

    out = run_study_smoke(tmp_path, metadata_depths=[0], seeds=4)
    runs = json.loads((out / "results.json").read_text())["models"]["0"]
    assert len(runs) == 4
    evals = [json.loads((out / "evals" / f"dm0-seed{s}.json").read_text())["loss"]["items"] for s in range(4)]
    loss = [np.asarray(e["model_masked"], float) for e in evals]
    tok = np.asarray(evals[0]["tokens"], float)
    definite = 0
    for a_idx in ((0, 1), (0, 2), (0, 3)):
        b_idx = tuple(k for k in range(4) if k not in a_idx)
        a, b = [loss[k] for k in a_idx], [loss[k] for k in b_idx]
        seeded = seeded_difference(a, b, tok)
        naive = paired_difference(np.mean(a, 0) - np.mean(b, 0), tok)
        assert seeded.seeds == (2, 2) and seeded.se > 2 * naive.se
        words = {superiority("same configuration", d, 0.05, "nats/token").verdict for d in (seeded, seeded.negated())}
        definite += bool(words & {"reproduced", "contradicted"})
    assert definite <= 1


def run_study_smoke(tmp_path, **kw):
    from metacond.studies.pcfg.study import StudyArguments, run_study

    return run_study(StudyArguments(preset="smoke", output_dir=str(tmp_path / "study"), **kw))


def test_probe_fit_on_distinct_rows_with_counts_equals_the_fit_on_every_item():
    from metacond.eval_tasks.pcfg.probing import _collapse, _fit_all

    rng = np.random.default_rng(1)
    groups = rng.integers(0, 12, 600)  # 12 prompts, each with one hidden state per layer
    labels = np.stack([groups % 2, rng.integers(0, 2, 600)], 1)
    states = rng.normal(size=(3, 12, 8)).astype(np.float32)
    x = states[:, groups] + rng.normal(scale=1e-5, size=(3, 600, 8)).astype(np.float32)  # padding-sized jitter
    rows, ys, counts = _collapse(x, labels, groups)
    assert rows.shape[1] == len(np.unique(np.c_[groups, labels], axis=0)) < 50 and counts.sum() == 600
    full = _fit_all(x, labels, np.ones(600), ks=[2, 2], l2=0.1)
    short = _fit_all(rows, ys, counts, ks=[2, 2], l2=0.1)
    for a, b in zip(full, short):
        np.testing.assert_allclose(a, b, atol=2e-3)
    # Features that differ within a prompt are not a model's states: every row is kept.
    noisy = x + rng.normal(size=x.shape).astype(np.float32)
    assert _collapse(noisy, labels, groups)[0].shape == noisy.shape
