"""Position-robust MCQ (cyclic option orders), named scoring rules and the reference protocol's prompt."""

import json

import pytest

from metacond.eval_tasks import TASK_DIR
from metacond.eval_tasks.localnews import scoring
from metacond.eval_tasks.localnews import utils as u

TASKS = TASK_DIR / "localnews"
COUNTRIES = {"africa": "Nigeria", "america": "Jamaica", "asia": "India", "europe": "Ireland"}


def gold_first_file(path, per_continent=5):
    """Published format with the correct answer always listed first (as in 780 of the published file's 800 rows)."""
    with open(path, "w") as f:
        for cont, country in COUNTRIES.items():
            for i in range(per_continent):
                opts = [f"right {country} {i}", f"wrong {i} one", f"wrong {i} two", f"wrong {i} three"]
                f.write(json.dumps({"question": f"Who runs the {country} port {i}?", "options": opts, "correct_answer": opts[0],
                                    "distractors": opts[1:], "country": country, "continent": "North America" if country == "Jamaica" else cont,
                                    "generated_by": "fixture"}) + "\n")
    return 4 * per_continent


class AlwaysFirst:
    """An answerer with no knowledge that always takes the first slot: equal log-likelihoods (lm-eval's argmax breaks the tie
    toward slot A) and "A" as its generated answer. Token counts split on whitespace, for the per-token rule."""

    def __new__(cls):
        from lm_eval.api.model import LM

        class _LM(LM):
            tokenizer_name = "always-first"  # lm-eval's chat-template path names the tokenizer in its cache keys

            def loglikelihood(self, requests, disable_tqdm=False):
                return [(0.0, False) for _ in requests]

            def loglikelihood_rolling(self, requests, disable_tqdm=False):
                return [0.0 for _ in requests]

            def generate_until(self, requests, disable_tqdm=False):
                return ["A" for _ in requests]

            def _encode_pair(self, context, continuation):
                return context.split(), continuation.split()

        return _LM()


def _run(tmp_path, tasks, **meta):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from metacond.modeling.tokenizer import build_text_tokenizer

    n = gold_first_file(tmp_path / "q.jsonl")
    build_text_tokenizer(["right wrong one two three Nigeria Jamaica"] * 5, vocab_size=280).save_pretrained(tmp_path / "tok")
    lm = AlwaysFirst()
    tm = TaskManager(include_defaults=False, include_path=str(TASKS), metadata={"data_file": str(tmp_path / "q.jsonl"), "tokenizer": str(tmp_path / "tok"), **meta})
    return n, lm, lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=tm, bootstrap_iters=0, log_samples=True)


FAMILIES = ["localnews_mcq_none", "localnews_letter_full", "localnews_official_full", "localnews_gen_country"]


def test_always_first_answerer_scores_a_quarter(tmp_path):
    from metacond.eval_tasks.run_eval import rule_tables

    n, lm, res = _run(tmp_path, FAMILIES)
    for group in FAMILIES:
        assert res["results"][group]["acc,none"] == pytest.approx(0.25), group
    samples = {g: res["samples"][g] for g in FAMILIES}
    assert all(len(v) == n for v in samples.values())  # a document per question (its 4 orders inside); Jamaica's 'North America' rows kept
    for g, fam in zip(FAMILIES, ("mcq", "letter", "official", "gen")):
        rules, bias = rule_tables(fam, g.split("_")[-1], samples[g])
        assert {r.rule for r in rules} == set(scoring.RULES_OF_FAMILY[fam])
        assert all(r.acc == pytest.approx(0.25) and r.questions == n and r.orders == 4 for r in rules), rules
        for b in bias:  # the bias is visible: every answer in slot A, right exactly when the gold answer was put there
            assert b.n_gold == n and b.choice_rate == (1.0 if b.position == "A" else 0.0)
            assert b.acc_when_gold_here == (1.0 if b.position == "A" else 0.0)


def test_without_rotation_the_same_answerer_looks_perfect(tmp_path):
    """The data's own order (rotate_options false) lets the always-first answerer score 1.0: what the rotations remove."""
    _, _, res = _run(tmp_path, ["localnews_mcq_none", "localnews_gen_none"], rotate_options=False)
    assert res["results"]["localnews_mcq_none"]["acc,none"] == 1.0 and res["results"]["localnews_gen_none"]["acc,none"] == 1.0


def test_rotations_put_every_option_in_every_slot():
    opts = ["a", "b", "c", "d"]
    orders = [scoring.rotate(opts, r) for r in range(4)]
    assert orders[1] == ["b", "c", "d", "a"]
    for slot in range(4):
        assert sorted(o[slot] for o in orders) == opts
    assert [orders[r][scoring.rotated_gold(2, r, 4)] for r in range(4)] == ["c"] * 4


def test_scoring_rules_disagree_where_they_should():
    lls, ntok, choices = [-6.0, -4.0, -9.0], [3, 1, 9], ["a long option", "b", "c"]
    assert scoring.predict("sum", lls) == 1
    assert scoring.predict("option_text_avg", lls, ntok) == 2  # -1.0 per token beats -2.0 and -4.0
    assert scoring.predict("byte_norm", lls, choices=choices) == 0  # -6/13 per byte
    assert scoring.predict("sum", [-1.0, -1.0, -1.0]) == 0  # a tie goes to slot A: rotations make that fair
    assert scoring.accuracy([0, None, 1], [0, 1, 0]) == pytest.approx(1 / 3)
    assert scoring.accuracy([0, None, 1], [0, 1, 0], "exclude") == pytest.approx(1 / 2)


def test_official_prompt_is_the_reference_layout(tmp_path):
    gold_first_file(tmp_path / "q.jsonl", per_continent=1)
    rows, _ = u.load_questions(tmp_path / "q.jsonl")
    r = next(x for x in rows if x["country_code"] == "jm")
    opts = scoring.rotate(r["options"], 1)
    assert u.official_prompt(r, "full", opts) == (
        "URL: www.globalfactcheck.org/jm\nCOUNTRY: jm\nCONTINENT: North America\n\nTITLE: Facts about the country jm\n\n"
        "CONTENT:\nQuestion: Who runs the Jamaica port 0?\n\nOptions:\nA: wrong 0 one\nB: wrong 0 two\nC: wrong 0 three\nD: right Jamaica 0\n\n"
        "Answer with the correct option.")
    assert u.official_prompt(r, "none").startswith("CONTENT:\nQuestion: Who runs")


def _reference_prompt(row: dict, options: list[str]) -> str:
    """The reference's rendering of one question (its ``legacy_code`` metadata style, ``question`` layout, no chat template),
    written out here from its description rather than taken from utils.official_prompt."""
    cc = {"Nigeria": "ng", "Jamaica": "jm", "India": "in", "Ireland": "ie"}[row["country"]]
    listing = "\n".join(f"{'ABCD'[i]}: {o}" for i, o in enumerate(options))
    user = (f"URL: www.globalfactcheck.org/{cc}\nCOUNTRY: {cc}\nCONTINENT: {str(row['continent']).strip().title()}\n\n"
            f"TITLE: Facts about the country {cc}\n\nCONTENT:\nQuestion: {row['question'].strip()}\n\nOptions:\n{listing}\n\n"
            "Answer with the correct option.")
    return user.rstrip() + "\n"


def _reference_scores(model, tok, prompt: str, options: list[str]) -> tuple[list[float], list[int]]:
    """The reference's option_text scoring: the prompt tokenized alone (no special tokens, so no BOS), each candidate
    " " + option.strip() tokenized alone and appended; the candidate tokens' log-probabilities summed, and counted."""
    import torch

    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    sums, counts = [], []
    with torch.no_grad():
        for o in options:
            cand = tok(" " + o.strip(), add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt_ids + cand])
            logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
            sums.append(logp[len(prompt_ids) - 1:].gather(-1, ids[0, len(prompt_ids):, None])[:, 0].sum().item())
            counts.append(len(cand))
    return sums, counts


def test_official_agrees_with_the_reference_scoring_on_every_question(tmp_path):
    """lm-eval through localnews_official (add_bos_token=False, as README says) picks, under every option order, the option
    the reference's own per-token-mean scoring picks: the newline is not scored, no BOS, the option's own tokens counted.
    (With lm-eval's default BOS the log-likelihoods differ by ~0.02 nats and this test fails.)"""
    import json

    import lm_eval
    import numpy as np
    from lm_eval.tasks import TaskManager

    from metacond.eval_tasks.localnews.questions import option_lls, plan_requests, rule_predictions
    from metacond.modeling.checkpoint import build_model
    from metacond.modeling.tokenizer import build_text_tokenizer

    n = gold_first_file(tmp_path / "q.jsonl", per_continent=6)
    rows = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    tok = build_text_tokenizer([_reference_prompt(r, r["options"]) for r in rows] * 3, vocab_size=400)
    model = build_model("tiny", tok, seed=3)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    tm = TaskManager(include_defaults=False, include_path=str(TASKS), metadata={"data_file": str(tmp_path / "q.jsonl"), "pretrained": str(tmp_path / "m"), "add_bos_token": False})
    res = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={tmp_path / 'm'},add_bos_token=False,device=cpu,batch_size=8",
                                  tasks=["localnews_official_full"], task_manager=tm, bootstrap_iters=0, log_samples=True)
    samples = res["samples"]["localnews_official_full"]
    assert len(samples) == n
    agree, total, right = 0, 0, []
    for s in samples:
        row = rows[s["doc"]["qid"] - 1]
        ours = rule_predictions(s["doc"], s["filtered_resps"], "option_text_avg")
        lls = option_lls(s["doc"], [float(x[0]) for x in s["filtered_resps"]], plan_requests(s["doc"])[1])
        for r, (pick, gold) in zip(s["doc"]["orders"], ours):
            options = scoring.rotate(row["options"], r)
            sums, counts = _reference_scores(model, tok, _reference_prompt(row, options), options)
            assert counts == [s["doc"]["ntok"][(k + r) % 4] for k in range(4)]
            assert np.allclose(lls[r], sums, atol=1e-4), (lls[r], sums)
            ref_pick = int(np.argmax([x / c for x, c in zip(sums, counts)]))
            agree += ref_pick == pick
            total += 1
            right.append(ref_pick == options.index(row["correct_answer"]))
    assert total == 4 * n and agree == total
    # lm-eval's own acc_tokens is the reference's accuracy over (question, order), averaged per question.
    assert res["results"]["localnews_official_full"]["acc_tokens,none"] == pytest.approx(float(np.mean(right)))


def test_official_chat_path_wraps_each_prompt_with_the_reference_system_prompt(tmp_path):
    """With --apply_chat_template every option order's prompt goes through the model's chat template with the reference's
    system prompt, and the template's trailing whitespace is conditioned on, never scored (its own request, subtracted)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from metacond.modeling.tokenizer import build_text_tokenizer

    gold_first_file(tmp_path / "q.jsonl", per_continent=1)
    build_text_tokenizer(["right wrong one two three"] * 5, vocab_size=280).save_pretrained(tmp_path / "tok")
    lm = AlwaysFirst()

    def apply_chat_template(history, add_generation_prompt=True):
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in history) + "<assistant>\n\n"

    lm.apply_chat_template = apply_chat_template
    tm = TaskManager(include_defaults=False, include_path=str(TASKS), metadata={"data_file": str(tmp_path / "q.jsonl"), "tokenizer": str(tmp_path / "tok")})
    res = lm_eval.simple_evaluate(model=lm, tasks=["localnews_official_full"], task_manager=tm, bootstrap_iters=0, log_samples=True,
                                  apply_chat_template=True)
    s = res["samples"]["localnews_official_full"][0]
    args = [a[:2] for a in s["arguments"]]
    assert len(args) == 4 * 5  # 4 orders x (the separator alone + 4 options)
    ctx, sep = args[0]
    assert ctx.startswith("<system>Below is an instruction that describes a task.") and "<user>URL: www.globalfactcheck.org/" in ctx
    assert ctx.endswith("<assistant>") and sep == "\n\n" and args[1][1].startswith("\n\n ")
    assert all(c.startswith("<system>Below is an instruction") for c, _ in args) and len({c for c, _ in args}) == 4  # one prompt per order
    assert res["results"]["localnews_official_full"]["acc,none"] == pytest.approx(0.25)
