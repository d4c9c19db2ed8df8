"""metacond eval: real lm-eval runs through the wrapper, results JSON, table and figure."""

import json
import subprocess
import sys

import pytest

from metacond import MetacondError
from metacond.eval_tasks.run_eval import EvalArguments, run_eval
from test_localnews_mcq import write_questions


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from transformers import AutoTokenizer

    from metacond.modeling.checkpoint import build_model
    from test_news import small_build

    d = tmp_path_factory.mktemp("eval")
    small_build(d, per_country=5)

    tok = AutoTokenizer.from_pretrained(d / "news" / "tokenizer")
    model = build_model("tiny", tok, seed=0, max_position_embeddings=4096)
    model.save_pretrained(d / "model")
    tok.save_pretrained(d / "model")
    write_questions(d / "q.jsonl", per_continent=4)
    return d


def test_eval_writes_results_summary_and_png(setup):
    d = setup
    payload = run_eval(EvalArguments(model=str(d / "model"), conditions="none,full", mcq_data=str(d / "q.jsonl"),
                                     ppl_data=str(d / "news" / "global" / "full" / "parquet" / "test.parquet"), output_dir=str(d / "out")))
    saved = json.loads((d / "out" / "eval_results.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(payload["summary"]))
    fams = {(r["family"], r["condition"], r["continent"]) for r in saved["summary"]}
    for c in ("none", "full"):
        assert ("mcq", c, "all") in fams and ("ppl", c, "asia") in fams
        assert all(("mcq", c, k) in fams for k in ("africa", "america", "asia", "europe"))
    assert "localnews_mcq_full_asia" in saved["lm_eval"]["mcq"]["results"]
    assert (d / "out" / "eval_summary.png").stat().st_size > 3000
    assert "| continent | none | full |" in (d / "out" / "eval_summary.md").read_text()


def test_eval_bad_input_is_one_line(setup, tmp_path):
    d = setup
    (tmp_path / "notok").mkdir()
    (tmp_path / "notok" / "config.json").write_text("{}")
    with pytest.raises(MetacondError, match="has no tokenizer"):
        run_eval(EvalArguments(model=str(tmp_path / "notok"), mcq_data=str(d / "q.jsonl")))
    with pytest.raises(MetacondError, match="unknown condition 'region'"):
        EvalArguments(model=str(d / "model"), conditions="none,region", mcq_data=str(d / "q.jsonl"))
    r = subprocess.run([sys.executable, "-m", "metacond", "eval", "--model", str(d / "model")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "give --mcq_data and/or --ppl_data" in r.stderr and "Traceback" not in r.stderr
