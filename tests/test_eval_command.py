"""metacond eval: real lm-eval runs through the wrapper, results JSON, table and figure."""

import json
import subprocess
import sys

import pytest
from news_fixture import write_questions

from metacond import MetacondError
from metacond.eval_tasks.results import EvalResults, ItemScore, SummaryRow
from metacond.eval_tasks.run_eval import EvalArguments, run_eval


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from news_fixture import small_build_with_model

    d = tmp_path_factory.mktemp("eval")
    small_build_with_model(d, per_country=5)
    write_questions(d / "q.jsonl", per_continent=4)
    return d


def test_eval_writes_results_summary_and_png(setup):
    d = setup
    payload = run_eval(EvalArguments(model=str(d / "model"), conditions="none,full", mcq_data=str(d / "q.jsonl"),
                                     ppl_data=str(d / "news" / "global" / "full" / "parquet" / "test.parquet"), output_dir=str(d / "out")))
    saved = EvalResults.load(d / "out")  # the file reads back as what run_eval returned
    assert json.dumps(saved.to_dict()) == json.dumps(payload.to_dict())
    assert isinstance(saved.summary[0], SummaryRow) and isinstance(saved.items[0], ItemScore)
    fams = {(r.family, r.condition, r.continent) for r in saved.summary}
    for c in ("none", "full"):
        assert ("mcq", c, "all") in fams and ("ppl", c, "asia") in fams
        assert all(("mcq", c, k) in fams for k in ("africa", "america", "asia", "europe"))
    # One lm-eval task per condition over every continent; its stderr counts questions (16), not question × order (64).
    res = saved.lm_eval["mcq"]["results"]["localnews_mcq_full"]
    assert saved.lm_eval["mcq"]["n-samples"]["localnews_mcq_full"]["effective"] == 16
    acc = [i.acc for i in saved.items if i.family == "mcq" and i.condition == "full"]
    import numpy as np

    assert res["acc_stderr,none"] == pytest.approx(np.std(acc, ddof=1) / np.sqrt(len(acc)))
    assert (d / "out" / "eval_summary.png").stat().st_size > 3000
    md = (d / "out" / "eval_summary.md").read_text()
    assert "| continent | none | full |" in md and "## Per country: token-level perplexity" in md and "| ng | africa |" in md


def test_regional_scores_with_bootstrap_intervals(setup):
    d = setup
    payload = run_eval(EvalArguments(model=str(d / "model"), conditions="none,country,full", mcq_data=str(d / "q.jsonl"), generative=True,
                                     ppl_data=str(d / "news" / "global" / "full" / "parquet" / "test.parquet"), output_dir=str(d / "out2"),
                                     bootstrap_iters=200))
    reg = payload.regional
    for r in reg:
        if r.n < 2:  # one article: no interval, said so with NaN
            assert r.ci_low != r.ci_low
            continue
        assert r.ci_low <= r.value + 1e-12 and r.value <= r.ci_high + 1e-12, r
    res = {fam: payload.lm_eval[fam]["results"] for fam in ("mcq", "gen", "ppl")}
    # Continent rows, weighted by their questions, give lm-eval's own value over all continents (an independent computation).
    for fam in ("mcq", "gen"):
        for c in ("none", "country", "full"):
            rows = [r for r in reg if (r.family, r.condition, r.level, r.metric) == (fam, c, "continent", "acc")]
            pooled = sum(r.value * r.n for r in rows) / sum(r.n for r in rows)
            assert pooled == pytest.approx(res[fam][f"localnews_{fam}_{c}"]["acc,none"], rel=1e-9)
    for c in ("none", "country", "full"):  # bits/byte over all continents is a byte-weighted mean: inside the continents' range
        v = [r.value for r in reg if (r.family, r.condition, r.level, r.metric) == ("ppl", c, "continent", "bits_per_byte")]
        assert min(v) - 1e-9 <= res["ppl"][f"localnews_ppl_{c}"]["bits_per_byte,none"] <= max(v) + 1e-9
    # Per country: 4 questions each (write_questions); gen answers are parsed or counted wrong.
    assert {r.n for r in reg if r.family == "mcq" and r.level == "country"} == {4}
    assert 0 <= res["gen"]["localnews_gen_full"]["parsed,none"] <= 1
    # Scored tokens per country do not depend on the metadata (which differs by country): every condition scores the
    # same article tokens (the block, its blank line and the article's marker are context).
    tok = {(r.condition, r.key): (r.scored_tokens, r.n) for r in reg
           if r.family == "ppl" and r.level == "country" and r.metric == "token_perplexity"}
    for cond in ("country", "full"):
        assert all(tok[(cond, k)] == tok[("none", k)] for c, k in tok if c == "none")


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


def test_data_missing_a_continent_runs_the_others(setup, tmp_path):
    """A corpus without European outlets (like the shared one): the task of the condition runs on the continents it has."""
    import math

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    d = setup
    t = pq.read_table(d / "news" / "global" / "full" / "parquet" / "test.parquet")
    t = t.filter(pc.not_equal(t.column("continent"), "europe"))
    pq.write_table(t, tmp_path / "no_europe.parquet")
    payload = run_eval(EvalArguments(model=str(d / "model"), conditions="none", ppl_data=str(tmp_path / "no_europe.parquet"),
                                     output_dir=str(tmp_path / "o"), bootstrap_iters=0))
    rows = {r.continent: r for r in payload.summary}
    assert set(rows) == {"africa", "america", "asia", "all"}
    reg = {r.key: r for r in payload.regional if r.level == "continent" and r.metric == "bits_per_byte"}
    # Pooled bits/byte (Σ nll / Σ bytes) is a byte-weighted mean of the continents' values: strictly inside their range.
    assert not math.isnan(rows["all"].value) and min(r.value for r in reg.values()) <= rows["all"].value <= max(r.value for r in reg.values())


def test_scoring_rules_and_position_bias_in_outputs(setup, tmp_path):
    """Every named rule is reported, averaged over the 4 option orders; the summed rule is lm-eval's own acc."""
    d = setup
    payload = run_eval(EvalArguments(model=str(d / "model"), conditions="none,full", mcq_data=str(d / "q.jsonl"), letter=True, official=True,
                                     generative=True, unparsed="exclude", output_dir=str(tmp_path / "o"), bootstrap_iters=0, limit=2))
    rules = {(r.family, r.condition, r.rule): r for r in payload.scoring_rules}
    assert set(rules) == {(f, c, r) for f, rs in (("mcq", ("sum", "option_text_avg", "byte_norm")), ("official", ("sum", "option_text_avg", "byte_norm")),
                                                  ("letter", ("option_letter",)), ("gen", ("generative",))) for c in ("none", "full") for r in rs}
    for fam in ("mcq", "official"):
        for c in ("none", "full"):
            res = payload.lm_eval[fam]["results"][f"localnews_{fam}_{c}"]
            assert rules[(fam, c, "sum")].acc == pytest.approx(res["acc,none"])
            assert rules[(fam, c, "byte_norm")].acc == pytest.approx(res["acc_bytes,none"])
            assert rules[(fam, c, "option_text_avg")].acc == pytest.approx(res["acc_tokens,none"])
            assert rules[(fam, c, "sum")].questions == 8 and rules[(fam, c, "sum")].orders == 4  # limit 2 per continent
    g = rules[("gen", "full", "generative")]
    # A random tiny model rarely gives a parsable letter: with every answer unparsed the "exclude" accuracy is undefined (NaN).
    assert g.unparsed_rule == "exclude" and g.acc == pytest.approx(g.acc_unparsed_excluded, nan_ok=True)
    assert g.acc_unparsed_wrong <= 1 - g.unparsed + 1e-12
    bias = [b for b in payload.position_bias if (b.family, b.condition, b.rule) == ("mcq", "full", "sum")]
    assert [b.position for b in bias] == ["A", "B", "C", "D"] and all(b.n_gold == 8 for b in bias)
    assert sum(b.choice_rate for b in bias) == pytest.approx(1.0)
    md = (tmp_path / "o" / "eval_summary.md").read_text()
    assert "| official | full | option_text_avg |" in md and "## Position bias" in md


def test_continents_come_from_the_country_not_the_label(setup, tmp_path):
    """Rows labelled 'North America' (the gold release's label for Jamaica or Canada), or with no continent at all, are scored
    under the continent of their country: none is dropped silently and a missing column is no error."""
    d = setup
    write_questions(tmp_path / "base.jsonl", per_continent=3)
    rows = []
    for line in (tmp_path / "base.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    rows = [r for r in rows if r.get("generated_by") == "fixture"]  # the fixture's valid questions (it adds bad rows too)
    relabelled = [{**r, "continent": "North America"} if i % 2 else {k: v for k, v in r.items() if k != "continent"} for i, r in enumerate(rows)]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in relabelled))
    payload = run_eval(EvalArguments(model=str(d / "model"), conditions="none", mcq_data=str(tmp_path / "q.jsonl"), output_dir=str(tmp_path / "o"),
                                     bootstrap_iters=0))
    per = {r.continent for r in payload.summary if r.family == "mcq"}
    assert per == {"africa", "america", "asia", "europe", "all"}
    assert len({i.id for i in payload.items if i.family == "mcq"}) == len(rows)


def test_eval_takes_the_url_style_of_the_models_training_build(setup, tmp_path):
    """A model trained on a build with full URLs is scored with full URLs without being told; a flag that
    contradicts its build is refused in one line."""
    import shutil

    from metacond.modeling.summary import TrainingSummary

    d = setup
    model = tmp_path / "model"
    shutil.copytree(d / "model", model)
    TrainingSummary(recipe={}, model={"parameters": 1}, data={}, tokens_seen={"input_tokens": 1},
                    metadata_scheme={"builder": {"config": {"url_style": "full"}, "template": "full"}}, loss_curve=[], final_train_loss=None,
                    wall_time_seconds=0.0).save(model)
    ppl = str(d / "news" / "global" / "full" / "parquet" / "test.parquet")
    with pytest.raises(MetacondError, match=r"--url_style host contradicts the model's training build \(url_style full\)"):
        run_eval(EvalArguments(model=str(model), conditions="url", ppl_data=ppl, url_style="host", output_dir=str(tmp_path / "x")))
    payload = run_eval(EvalArguments(model=str(model), conditions="url", ppl_data=ppl, limit=2, bootstrap_iters=0, output_dir=str(tmp_path / "out")))
    assert payload.url_style == "full"
    from metacond.eval_tasks.localnews.utils import load_articles

    full, host = (load_articles(ppl, condition="url", url_style=u, max_body_bytes=2000)["test"]["context"] for u in ("full", "host"))
    assert all(c.startswith("URL: https://") for c in full) and not any("/" in c.split("\n")[0] for c in host)
    # The task itself, given only the model (as lm_eval's CLI gives pretrained=…), renders the build's full URLs.
    assert load_articles(ppl, condition="url", pretrained=str(model))["test"]["context"] == full


def test_mcq_data_as_parquet_scores_like_jsonl(setup, tmp_path):
    """The published gold release is parquet: --mcq_data reads it as it reads JSONL (same questions, same accuracies)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from metacond.eval_tasks.localnews.utils import load_questions

    d = setup
    raw = [json.loads(line) for line in (d / "q.jsonl").read_text().splitlines() if line.strip().endswith("}")]  # not the broken line
    good = [r for r in raw if isinstance(r, dict) and isinstance(r.get("options"), list) and all(isinstance(o, str) for o in r["options"])
            and isinstance(r.get("country"), str)]
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in ("question", "options", "correct_answer", "country", "continent")} for r in good]),
                   tmp_path / "q.parquet")
    from_jsonl, _ = load_questions(d / "q.jsonl")
    from_parquet, _ = load_questions(tmp_path / "q.parquet")
    assert [r["question"] for r in from_parquet] == [r["question"] for r in from_jsonl] and len(from_jsonl) >= 16
    a = run_eval(EvalArguments(model=str(d / "model"), conditions="none", mcq_data=str(d / "q.jsonl"), bootstrap_iters=0, output_dir=str(tmp_path / "j")))
    b = run_eval(EvalArguments(model=str(d / "model"), conditions="none", mcq_data=str(tmp_path / "q.parquet"), bootstrap_iters=0,
                               output_dir=str(tmp_path / "p")))
    assert [(r.continent, r.value) for r in a.summary] == [(r.continent, r.value) for r in b.summary]


@pytest.mark.slow
def test_lmeval_and_metacond_eval_agree_with_defaults(setup, tmp_path):
    """The same model and data through lm-eval (what its CLI hands the tasks: pretrained=… and the data file, nothing else)
    and through metacond eval with its defaults give the same bits/byte and accuracy: the body budget, context length and
    URL style are decided once, from the model (defaults.py)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from metacond.eval_tasks import TASK_DIR

    d = setup
    ppl = str(d / "news" / "global" / "full" / "parquet" / "test.parquet")
    ours = run_eval(EvalArguments(model=str(d / "model"), conditions="full", ppl_data=ppl, mcq_data=str(d / "q.jsonl"), bootstrap_iters=0,
                                  output_dir=str(tmp_path / "o")))
    got = {(r.family, r.continent): r.value for r in ours.summary}
    for fam, data, metric in (("ppl", ppl, "bits_per_byte"), ("mcq", str(d / "q.jsonl"), "acc")):
        tm = TaskManager(include_defaults=False, include_path=str(TASK_DIR / "localnews"), metadata={"pretrained": str(d / "model"), "data_file": data})
        res = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={d / 'model'},device=cpu", tasks=[f"localnews_{fam}_full"],
                                      task_manager=tm, bootstrap_iters=0)
        assert res["results"][f"localnews_{fam}_full"][f"{metric},none"] == pytest.approx(got[(fam, "all")], rel=1e-6, abs=1e-9)
