"""The localnews_mcq lm-eval tasks on the published benchmark format."""

import json

import pytest
from news_fixture import COUNTRY_OF, write_questions  # noqa: F401

from metacond.eval_tasks import TASK_DIR
from metacond.eval_tasks.localnews import utils as u

TASKS = TASK_DIR / "localnews"
def test_bad_rows_reported_with_line_numbers_and_strict(tmp_path):
    n = write_questions(tmp_path / "q.jsonl")
    rows, problems = u.load_questions(tmp_path / "q.jsonl")
    assert len(rows) == n and len(problems) == 5
    assert problems[0].startswith(f"line {n + 1}: needs 2 to 10") and "not among the options" in problems[1]
    assert "unknown country 'Atlantis'" in problems[2] and "missing field 'question'" in problems[3] and "not valid JSON" in problems[4]
    with pytest.raises(ValueError, match="skipped 5 bad row"):
        u.load_questions(tmp_path / "q.jsonl", strict=True)
    r = rows[0]
    assert u.context_for(r, "none") == f"Question: {r['question']}\nAnswer:"
    assert u.context_for(r, "full").startswith("URL: punchng.com\nCOUNTRY: ng\nCONTINENT: africa\n\nQuestion: ")
    assert u.context_for(r, "country") == f"COUNTRY: ng\n\nQuestion: {r['question']}\nAnswer:"


def test_real_lmeval_run_on_published_format(tmp_path):
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from metacond.modeling.checkpoint import build_model
    from metacond.modeling.tokenizer import build_text_tokenizer

    n = write_questions(tmp_path / "q.jsonl")
    texts = [json.loads(line).get("question", "") for line in open(tmp_path / "q.jsonl") if line.startswith("{\"")]
    tok = build_text_tokenizer(texts + ["URL: a.com\nCOUNTRY: ng\nCONTINENT: africa\n\nQuestion: x\nAnswer: y"] * 5, vocab_size=300)
    model = build_model("tiny", tok, seed=0)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=16)
    tm = TaskManager(include_defaults=False, include_path=str(TASKS), metadata={"data_file": str(tmp_path / "q.jsonl")})
    res = lm_eval.simple_evaluate(model=lm, tasks=["localnews_mcq_full", "localnews_mcq_none"], task_manager=tm, bootstrap_iters=0)
    for cond in ("full", "none"):
        g = res["results"][f"localnews_mcq_{cond}"]
        assert 0.0 <= g["acc,none"] <= 1.0
        assert res["n-samples"][f"localnews_mcq_{cond}"]["effective"] == n  # a document per question, its 4 option orders inside



@pytest.mark.parametrize("response,expected", [
    ("B", 1), ("B. Lagos", 1), ("(C) the port", 2), ("D) x", 3), ("  A", 0),
    ("The answer is C.", 2), ("Answer: d", 3),
    ("I think it was Lagos State.", 1),  # substring fallback
    ("Abuja", 0),  # "Abuja" contains no letter answer; the option text matches
    ("Lagos or Kano", None),  # two options named: ambiguous, unparsed
    ("no idea", None), ("", None), ("E", None),
    ("Port Harcourt", 3), ("B: Port Harcourt", 1),  # a leading letter beats the text
])
def test_generative_answer_parsing(response, expected):
    assert u.parse_answer(response, ["Abuja", "Lagos", "Kano", "Port Harcourt"]) == expected


def test_generative_prompt_and_scoring(tmp_path):
    write_questions(tmp_path / "q.jsonl")
    rows, _ = u.load_questions(tmp_path / "q.jsonl")
    r = rows[1]
    p = u.gen_prompt(r, "country")
    assert p.startswith("COUNTRY: ng\n\nQuestion: ") and "\nA. " in p and "\nD. " in p and p.endswith("Answer with the correct option.")
    assert p.index(r["options"][0]) < p.index(r["options"][3])  # options in data order, not shuffled
    from metacond.eval_tasks.localnews.questions import question_results
    from metacond.eval_tasks.localnews.scoring import rotated_gold

    doc = u.load_gen(str(tmp_path / "q.jsonl"), condition="country")["test"][1]
    assert doc["prompts"][0] == p and len(doc["prompts"]) == 4  # one prompt per cyclic order, inside one document
    right = ["ABCD"[rotated_gold(doc["gold_in_file"], r, 4)] for r in doc["orders"]]
    assert question_results(doc, right, []) == {"acc": 1.0, "acc_exclude": (4.0, 4.0), "parsed": 1.0}
    assert question_results(doc, ["mumble"] * 4, []) == {"acc": 0.0, "acc_exclude": (0.0, 0.0), "parsed": 0.0}
    assert question_results(doc, right[:2] + ["mumble", "A" if right[3] != "A" else "B"], []) == {"acc": 0.5, "acc_exclude": (2.0, 3.0), "parsed": 0.75}
    # The reference's "exclude" rule: correct over parsed; ours (acc) counts the unparsed answer wrong.
    assert u.ratio_of_sums([(1.0, 1.0), (0.0, 0.0), (0.0, 1.0)]) == 0.5


def test_real_generative_lmeval_run(tmp_path):
    """A real greedy-generation run of the generative family (tiny random model: the answers are garbage, the plumbing is real)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from metacond.modeling.checkpoint import build_model
    from metacond.modeling.tokenizer import build_text_tokenizer

    n = write_questions(tmp_path / "q.jsonl", per_continent=2)
    tok = build_text_tokenizer(["Question: which\nA. x\nB. y\nAnswer with the correct option. B"] * 10, vocab_size=300)
    lm = HFLM(pretrained=build_model("tiny", tok, seed=0), tokenizer=tok, batch_size=8, max_length=512)
    tm = TaskManager(include_defaults=False, include_path=str(TASKS), metadata={"data_file": str(tmp_path / "q.jsonl")})
    res = lm_eval.simple_evaluate(model=lm, tasks=["localnews_gen_full"], task_manager=tm, bootstrap_iters=0, log_samples=True,
                                  gen_kwargs="max_gen_toks=4")
    g = res["results"]["localnews_gen_full"]
    assert 0.0 <= g["acc,none"] <= g["parsed,none"] <= 1.0
    from metacond.eval_tasks.localnews.questions import rule_predictions

    samples = [s for t in res["samples"].values() for s in t]
    assert len(samples) == n and all(len(s["filtered_resps"]) == 4 for s in samples)  # a question, its 4 option orders inside
    for s in samples:
        picks = rule_predictions(s["doc"], s["filtered_resps"], "generative")
        assert s["acc"] == sum(p == g for p, g in picks) / 4
