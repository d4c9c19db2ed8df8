"""The entity-cloze MCQ builder: published format, filters, quotas, balanced answer positions."""

import json
import sys

import numpy as np
import pytest

from metacond import MetacondError
from metacond.data_builders.news.mcq import MCQBuildConfig, build_mcq
from metacond.eval_tasks import TASK_DIR

NAMES = {"ng": ("africa", ["Lagos", "Abuja", "Kano", "Ibadan"]), "ke": ("africa", ["Nairobi", "Mombasa", "Kisumu", "Nakuru"]),
         "in": ("asia", ["Delhi", "Mumbai", "Chennai", "Kolkata"]), "ph": ("asia", ["Manila", "Cebu", "Davao", "Quezon"]),
         "us": ("america", ["Chicago", "Boston", "Denver", "Seattle"]), "ca": ("america", ["Toronto", "Ottawa", "Calgary", "Halifax"]),
         "gb": ("europe", ["London", "Leeds", "Bristol", "Glasgow"]), "ie": ("europe", ["Dublin", "Cork", "Galway", "Limerick"])}


def write_articles(path, n_per_country=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for code, (cont, names) in NAMES.items():
        for i in range(n_per_country):
            a, b = rng.choice(names, 2, replace=False)
            text = (f"Officials said the new bridge near {a} would open in spring after long delays. "
                    f"Residents of {b} welcomed the plan at a meeting on day {i}. "
                    f"the council added that funding from {a} was already approved.")
            rows.append({"text": text, "country": code, "continent": cont, "url": f"news.example/{code}/{i}"})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return rows


def test_builds_valid_balanced_questions(tmp_path):
    rows = write_articles(tmp_path / "test.jsonl")
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": rows[0]["text"], "country": "ng", "continent": "africa"}) + "\n")
    rep = build_mcq(MCQBuildConfig(test_file=str(tmp_path / "test.jsonl"), train_file=str(tmp_path / "train.jsonl"), total=16,
                                   output=str(tmp_path / "q.jsonl")))
    qs = [json.loads(line) for line in open(tmp_path / "q.jsonl")]
    assert len(qs) == rep["questions"] == 16 and rep["per_continent"] == {"africa": 4, "america": 4, "asia": 4, "europe": 4}
    assert rep["removed"]["sentence_in_training_split"] >= 1
    assert sorted(rep["answer_positions"].values()) == [4, 4, 4, 4]
    sys.path.insert(0, str(TASK_DIR / "localnews"))
    try:
        import utils
    finally:
        sys.path.pop(0)
    for i, q in enumerate(qs):
        assert len(set(q["options"])) == 4 and q["correct_answer"] in q["options"] and q["correct_answer"] not in q["question"]
        assert "____" in q["question"] and q["generated_by"] == "metacond-entity-cloze-v1"
        local = set(NAMES[q["country_code"]][1])
        assert q["correct_answer"] in local and sum(d in local for d in q["distractors"]) == 1  # one same-country distractor
        row, why = utils.validate_row(q, i + 1)  # the published format the lm-eval tasks read
        assert why is None
    assert (tmp_path / "q.md").read_text().startswith("---")


def test_dry_run_writes_nothing_and_bad_input(tmp_path):
    write_articles(tmp_path / "test.jsonl")
    rep = build_mcq(MCQBuildConfig(test_file=str(tmp_path / "test.jsonl"), total=8, output=str(tmp_path / "q.jsonl"), dry_run=True))
    assert rep["questions"] == 8 and not (tmp_path / "q.jsonl").exists()
    with pytest.raises(MetacondError, match="does not exist"):
        MCQBuildConfig(test_file=str(tmp_path / "missing.parquet"))
    (tmp_path / "bad.jsonl").write_text(json.dumps({"body": "x", "country": "ng", "continent": "africa"}) + "\n")
    with pytest.raises(MetacondError, match="lacks column 'text'"):
        build_mcq(MCQBuildConfig(test_file=str(tmp_path / "bad.jsonl")))
