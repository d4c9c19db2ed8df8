"""The entity-cloze MCQ builder: published format, filters, quotas, balanced answer positions."""

import json
import sys

import numpy as np
import pytest

from metacond import MetacondError
from metacond.data_builders.news.mcq import BLANK, GENERATED_BY, QUESTION_PREFIX, MCQBuildConfig, build_mcq
from metacond.eval_tasks import TASK_DIR
from metacond.eval_tasks.localnews import utils as u

NAMES = {"ng": ("africa", ["Lagos", "Abuja", "Kano", "Ibadan"]), "ke": ("africa", ["Nairobi", "Mombasa", "Kisumu", "Nakuru"]),
         "in": ("asia", ["Delhi", "Mumbai", "Chennai", "Kolkata"]), "ph": ("asia", ["Manila", "Cebu", "Davao", "Quezon"]),
         "us": ("america", ["Chicago", "Boston", "Denver", "Seattle"]), "ca": ("america", ["Toronto", "Ottawa", "Calgary", "Halifax"]),
         "gb": ("europe", ["London", "Leeds", "Bristol", "Glasgow"]), "ie": ("europe", ["Dublin", "Cork", "Galway", "Limerick"])}


def _write(path, table, n_per_country, seed, text_of):
    """One article per (country, i) of ``table`` (code -> (continent, *names)); ``text_of(rng, names, i)`` writes the text."""
    rng = np.random.default_rng(seed)
    rows = [{"text": text_of(rng, names, i), "country": code, "continent": cont, "url": f"news.example/{code}/{i}"}
            for code, (cont, *names) in table.items() for i in range(n_per_country)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return rows


def _plain_text(rng, names, i):
    a, b = rng.choice(names[0], 2, replace=False)
    return (f"Officials said the new bridge near {a} would open in spring after long delays. "
            f"Residents of {b} welcomed the plan at a meeting on day {i}. "
            f"the council added that funding from {a} was already approved.")


def write_articles(path, n_per_country=6, seed=0):
    return _write(path, NAMES, n_per_country, seed, _plain_text)


def test_builds_valid_balanced_questions(tmp_path):
    rows = write_articles(tmp_path / "test.jsonl")
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": rows[0]["text"], "country": "ng", "continent": "africa"}) + "\n")
    rep = build_mcq(MCQBuildConfig(test_file=str(tmp_path / "test.jsonl"), train_file=str(tmp_path / "train.jsonl"), total=16,
                                   output=str(tmp_path / "q.jsonl")))
    qs = [json.loads(line) for line in open(tmp_path / "q.jsonl")]
    assert len(qs) == rep["questions"] == 16 and rep["per_continent"] == {"africa": 4, "america": 4, "asia": 4, "europe": 4}
    assert rep["removed"]["sentence_in_training_split"] >= 1
    assert sorted(rep["answer_positions"].values()) == [4, 4, 4, 4]
    for i, q in enumerate(qs):
        assert len(set(q["options"])) == 4 and q["correct_answer"] in q["options"] and q["correct_answer"] not in q["question"]
        assert "____" in q["question"] and q["generated_by"] == GENERATED_BY and q["answer_type"] == "place"
        local = set(NAMES[q["country_code"]][1])
        assert q["correct_answer"] in local and sum(d in local for d in q["distractors"]) == 1  # one same-country distractor
        row, why = u.validate_row(q, i + 1)  # the published format the lm-eval tasks read
        assert why is None
    assert (tmp_path / "q.md").read_text().startswith("---")



# Names of known type per country, so tests can check types against the truth rather than the typer.
TYPED = {"ng": ("africa", ["Lagos", "Kano"], ["Chinedu Okafor", "Amina Bello"], "Nigerian"),
         "ke": ("africa", ["Nairobi", "Kisumu"], ["Wanjiru Otieno", "Kamau Njoroge"], "Kenyan"),
         "in": ("asia", ["Mumbai", "Chennai"], ["Rahul Sharma", "Priya Nair"], "Indian"),
         "ph": ("asia", ["Manila", "Davao"], ["Maria Santos", "Jose Reyes"], "Filipino"),
         "us": ("america", ["Chicago", "Denver"], ["John Miller", "Emily Carter"], "American"),
         "ca": ("america", ["Toronto", "Calgary"], ["Liam Tremblay", "Olivia Roy"], "Canadian"),
         "gb": ("europe", ["Leeds", "Bristol"], ["Oliver Smith", "Harry Jones"], "British"),
         "ie": ("europe", ["Dublin", "Galway"], ["Siobhan Murphy", "Sean Kelly"], "Irish")}
TRUTH = {"place": {p for v in TYPED.values() for p in v[1]}, "person": {p for v in TYPED.values() for p in v[2]},
         "nationality": {v[3] for v in TYPED.values()}}
JUNK = {"Tirzu", "Yes", "Officer", "Wing", "Mediterranean"}


def _typed_text(rng, names, i):
    places, people, nat = names
    place, person = places[i % 2], people[int(rng.integers(2))]
    return (f"Officials said the new bridge near {place} would open in spring after long delays. "
            f"The plan was backed by {person}, who spoke at a town meeting on day {i}. "
            f"Many {nat} traders welcomed it, a spokesman for Im Tirzu added on day {i}. "
            f"The Wing of the party said Yes to the plan, and the wing leader said yes again. "
            f"Boats crossing the Mediterranean were counted, the mediterranean diet was not.")


def write_typed_articles(path, n_per_country=8, seed=0):
    return _write(path, TYPED, n_per_country, seed, _typed_text)


def test_distractors_share_the_answers_type_and_junk_is_no_option(tmp_path):
    write_typed_articles(tmp_path / "test.jsonl")
    rep = build_mcq(MCQBuildConfig(test_file=str(tmp_path / "test.jsonl"), total=40, output=str(tmp_path / "q.jsonl"), max_per_article=3))
    qs = [json.loads(line) for line in open(tmp_path / "q.jsonl")]
    assert len(qs) == rep["questions"] == 40
    assert set(rep["answer_types"]) == {"place", "person", "nationality"}  # every kind of the fixture is asked
    for q in qs:
        truth = next(t for t, names in TRUTH.items() if q["correct_answer"] in names)
        assert q["answer_type"] == truth
        assert set(q["options"]) <= TRUTH[truth], q  # all four options of the answer's type
        assert not set(q["options"]) & JUNK
    assert rep["removed"]["fragment_of_longer_name"] >= 1 and rep["removed"]["common_word"] >= 1


def test_candidates_reject_fragments_and_common_words():
    from collections import Counter
    from types import SimpleNamespace

    from metacond.data_builders.news.entities import EntityTyper
    from metacond.data_builders.news.mcq import candidates

    text = ("Protesters from Im Tirzu marched to Lagos on Friday. The group met Chinedu Okafor, who runs the local market there. "
            "Police said the Wing of the movement stayed home. A police van and a wing of the army were seen near the old road. "
            "Members of Al-Shabaab were reported near Mombasa by the local press.")
    cfg = SimpleNamespace(min_sentence_chars=20, max_sentence_chars=300)  # the two bounds candidates() reads
    removed: Counter = Counter()
    got = {(name, t) for _, name, t in candidates({"text": text}, cfg, EntityTyper([text]), removed)}
    assert got == {("Lagos", "place"), ("Chinedu Okafor", "person"), ("Mombasa", "place")}
    assert removed["fragment_of_longer_name"] == 2  # Tirzu (after "Im"), Shabaab (after "Al-")
    assert removed["common_word"] == 1  # Wing ("wing" in lower case elsewhere)


def _q(options, answer, question="Q?"):
    return {"question": question, "options": options, "correct_answer": answer}


def test_answer_only_baselines_on_crafted_sets():
    from metacond.data_builders.news.answer_only import answer_only_baselines, longest_option, most_frequent_option, unigram_option_model

    longest = [_q(["a", "bb", "ccc", "dddddd"], "dddddd", f"q{i}") for i in range(40)]
    assert longest_option(longest) == 1.0
    assert longest_option([_q(["aa", "bb", "cc", "dd"], "aa")]) == 0.25  # a four-way tie is a random pick
    assert longest_option([_q(["a", "bb", "ccc", "dddddd"], "a")]) == 0.0
    rows = [_q(["Lagos", "Kano", "Abuja", "Jos"], ans, f"q{i}") for i, ans in enumerate(["Lagos", "Kano"] * 10)]
    assert most_frequent_option(rows, ["Lagos Lagos Kano", "Abuja in Lagos"]) == 0.5  # Lagos (3) always picked, right half the time
    assert most_frequent_option(rows, ["nothing here"]) == 0.25
    # An answer-marking word ("City") that the unigram model must learn from the other folds.
    marked = [_q([f"Town{i} City", f"A{i}", f"B{i}", f"C{i}"], f"Town{i} City", f"q{i}") for i in range(60)]
    assert unigram_option_model(marked) == 1.0
    plain = [_q([f"w{i}a", f"w{i}b", f"w{i}c", f"w{i}d"], f"w{i}a", f"q{i}") for i in range(60)]
    assert unigram_option_model(plain) == 0.25  # words never seen in training folds: all options tie
    assert answer_only_baselines(plain, None) == {"longest": 0.25, "most_frequent": None, "unigram": 0.25}


def test_report_and_card_show_baselines_and_twenty_questions(tmp_path):
    rows = write_typed_articles(tmp_path / "test.jsonl")
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps({**r, "text": r["text"].replace("day", "week")}) for r in rows[::3]) + "\n")
    rep = build_mcq(MCQBuildConfig(test_file=str(tmp_path / "test.jsonl"), train_file=str(tmp_path / "train.jsonl"), total=40,
                                   output=str(tmp_path / "q.jsonl"), max_per_article=3))
    base = rep["answer_only_baselines"]
    assert set(base) == {"longest", "most_frequent", "unigram"} and all(v is not None for v in base.values())
    card = (tmp_path / "q.md").read_text()
    sample = card.split("sampled questions", 1)[1]
    assert sum(line.startswith("| ") and "**" in line for line in sample.splitlines()) == 20
    assert f"| longest | {base['longest']:.3f} |" in card


def _benchmark_like(text: str) -> bool:
    return text.lstrip().startswith(QUESTION_PREFIX.strip()) or BLANK in text or "fill in the blank" in text.lower()


def test_instructions_never_use_the_benchmark_task_or_template(tmp_path):
    from metacond import MetacondError
    from metacond.data_builders.news.instructions import TASKS, news_instructions

    rows = write_typed_articles(tmp_path / "test.jsonl")
    build_mcq(MCQBuildConfig(test_file=str(tmp_path / "test.jsonl"), total=8, output=str(tmp_path / "q.jsonl")))
    assert all(_benchmark_like(json.loads(line)["question"]) for line in open(tmp_path / "q.jsonl"))  # the matcher sees the benchmark
    inst = news_instructions([{**r, "title": f"Story {i}"} for i, r in enumerate(rows)], tasks=TASKS)
    assert {r["task"] for r in inst} == {"country", "headline"} and len(inst) == 2 * len(rows)
    assert not [r for r in inst if _benchmark_like(r["prompt"]) or _benchmark_like(r["completion"])]
    with pytest.raises(MetacondError, match="unknown instruction task 'entity'"):
        news_instructions(rows, tasks=["entity"])


def test_dry_run_writes_nothing_and_bad_input(tmp_path):
    write_articles(tmp_path / "test.jsonl")
    rep = build_mcq(MCQBuildConfig(test_file=str(tmp_path / "test.jsonl"), total=8, output=str(tmp_path / "q.jsonl"), dry_run=True))
    assert rep["questions"] == 8 and not (tmp_path / "q.jsonl").exists()
    with pytest.raises(MetacondError, match="does not exist"):
        MCQBuildConfig(test_file=str(tmp_path / "missing.parquet"))
    (tmp_path / "bad.jsonl").write_text(json.dumps({"body": "x", "country": "ng", "continent": "africa"}) + "\n")
    with pytest.raises(MetacondError, match="lacks column 'text'"):
        build_mcq(MCQBuildConfig(test_file=str(tmp_path / "bad.jsonl")))


@pytest.mark.parametrize("reply,reason", [
    ('{"question": "Which city hosts the fair?", "correct_answer": "Lagos", "distractors": ["Accra", "Nairobi", "Cairo"]}', None),
    ('Sure! Here it is:\n```json\n{"question": "Who won?", "correct_answer": "Kano Pillars", "distractors": ["A", "B", "C"]}\n```', None),
    ('{"note": 1} then {"question": "Q?", "correct_answer": "x", "distractors": ["y", "z", "w"]}', None),
    ('{"question": "Where is Lagos?", "correct_answer": "Lagos", "distractors": ["a", "b", "c"]}', "answer_elsewhere_in_question"),
    ('{"question": "Q?", "correct_answer": "a", "distractors": ["A", "b", "c"]}', "options_not_distinct"),
    ('{"question": "Q?", "correct_answer": "a", "distractors": ["b", "c"]}', "malformed_fields"),
    ("The answer is Lagos.", "unparseable_generation"),
    ('{"question": "Q?", "correct_answer": "a", "distractors": ["b", "c", "d"]', "unparseable_generation"),
])
def test_llm_reply_parsing(reply, reason):
    from metacond.data_builders.news.mcq_llm import parse_generation

    q, why = parse_generation(reply)
    assert why == reason and (q is None) == (reason is not None)
    if q:
        assert q["name"] not in q["distractors"] and len(q["distractors"]) == 3


def test_llm_generator_path_runs_a_real_local_model(tmp_path):
    """A tiny random model writes gibberish: every reply is counted under a reason, none is kept, nothing crashes."""
    from metacond.modeling.checkpoint import build_model
    from metacond.modeling.tokenizer import build_text_tokenizer

    write_articles(tmp_path / "test.jsonl", n_per_country=2)
    tok = build_text_tokenizer(['{"question": "Q?", "correct_answer": "a", "distractors": ["b", "c", "d"]} Lagos Delhi'] * 10, vocab_size=300)
    build_model("tiny", tok, seed=0).save_pretrained(tmp_path / "gen")
    tok.save_pretrained(tmp_path / "gen")
    rep = build_mcq(MCQBuildConfig(test_file=str(tmp_path / "test.jsonl"), total=8, output=str(tmp_path / "q.jsonl"), generator="llm",
                                   generator_model=str(tmp_path / "gen"), max_new_tokens=8, llm_batch_size=4, max_attempts=6))
    assert rep["candidates"] == 6 and sum(rep["removed"].values()) == 6 and rep["questions"] == 0
    assert rep["generator"] == "metacond-llm:gen"
    with pytest.raises(MetacondError, match="needs --generator_model"):
        MCQBuildConfig(test_file=str(tmp_path / "test.jsonl"), generator="llm")


@pytest.mark.slow
def test_builder_output_runs_through_the_lm_eval_cli(tmp_path):
    """Our builder's questions → plain `lm_eval --include_path` (a subprocess, as users run it) on a saved tiny model."""
    import subprocess

    from metacond.modeling.checkpoint import build_model
    from metacond.modeling.tokenizer import build_text_tokenizer

    rows = write_articles(tmp_path / "test.jsonl")
    rep = build_mcq(MCQBuildConfig(test_file=str(tmp_path / "test.jsonl"), total=8, output=str(tmp_path / "q.jsonl")))
    tok = build_text_tokenizer([r["text"] for r in rows] + ["URL: a.b\nCOUNTRY: ng\nCONTINENT: africa\n\nQuestion: x\nAnswer: y"] * 5, vocab_size=400)
    build_model("tiny", tok, seed=0).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    r = subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={tmp_path / 'm'},add_bos_token=True",
                        "--include_path", str(TASK_DIR / "localnews"), "--tasks", "localnews_mcq_full,localnews_mcq_none",
                        "--metadata", json.dumps({"data_file": str(tmp_path / "q.jsonl")}), "--batch_size", "8", "--device", "cpu",
                        "--output_path", str(tmp_path / "res")], capture_output=True, text=True, timeout=600,
                       env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(next((tmp_path / "res").glob("**/results_*.json")).read_text())
    for cond in ("full", "none"):
        assert 0 <= res["results"][f"localnews_mcq_{cond}"]["acc,none"] <= 1
        assert res["n-samples"][f"localnews_mcq_{cond}"]["effective"] == rep["questions"]  # a document per question, its orders inside
