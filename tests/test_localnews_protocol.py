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
    tm = TaskManager(include_path=str(TASKS), metadata={"data_file": str(tmp_path / "q.jsonl"), "tokenizer": str(tmp_path / "tok"), **meta})
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
        assert {r["rule"] for r in rules} == set(scoring.RULES_OF_FAMILY[fam])
        assert all(r["acc"] == pytest.approx(0.25) and r["questions"] == n and r["orders"] == 4 for r in rules), rules
        for b in bias:  # the bias is visible: every answer in slot A, right exactly when the gold answer was put there
            assert b["n_gold"] == n and b["choice_rate"] == (1.0 if b["position"] == "A" else 0.0)
            assert b["acc_when_gold_here"] == (1.0 if b["position"] == "A" else 0.0)


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
