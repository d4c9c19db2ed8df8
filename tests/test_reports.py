"""The report kit and the committed reference reports: a report renders from its results.json alone."""

import json
from pathlib import Path

import numpy as np

from metacond.eval_tasks.pcfg.results import PcfgStudyResults
from metacond.eval_tasks.stats import PairedDifference, Verdict, paired_difference
from metacond.studies.report_kit import Evidence, Findings, readme_table, verdict_table

ROOT = Path(__file__).resolve().parents[1]


def test_committed_pcfg_reference_renders_from_its_results():
    """report.md and verdicts.txt of the committed reference are a function of its results.json: the verdicts, the
    regime and every table come back byte for byte."""
    from metacond.studies.pcfg.report import render_markdown
    from metacond.studies.pcfg.report import verdict_table as pcfg_verdicts

    d = ROOT / "docs" / "results" / "pcfg-study-cpu"
    r = PcfgStudyResults.load(d)
    assert json.dumps(r.to_dict()) == json.dumps(json.loads((d / "results.json").read_text()))  # the schema holds the whole file
    assert render_markdown(r, r.findings) == (d / "report.md").read_text()
    assert pcfg_verdicts(r.findings, r.regime) == (d / "verdicts.txt").read_text()


def test_committed_localization_reference_loads_whole():
    """The localization reference's results.json is held by its schema key for key (its report.md predates the stored
    regime lines and re-renders at the next run)."""
    from metacond.studies.localization.report import readme_summary
    from metacond.studies.localization.results import LocalizationStudyResults

    d = ROOT / "docs" / "results" / "localization-study-cpu"
    r = LocalizationStudyResults.load(d)
    assert json.dumps(r.to_dict()) == json.dumps(json.loads((d / "results.json").read_text()))
    assert readme_summary(r) == (d / "readme_summary.md").read_text()


def test_a_finding_is_one_entry_plus_its_computation():
    """Declaring a finding is enough for it to be judged, tabled and put in the README table, in declaration order
    (evidence with an ``order`` groups, e.g. by D_M)."""
    rng = np.random.default_rng(0)
    findings = Findings()

    @findings.finding("The effect of arm {arm} is positive", test="superiority", units="nats/token", source="a test", threshold=0.05)
    def effect(results):
        for k, shift in enumerate(results["shifts"]):
            yield Evidence(paired_difference(rng.normal(shift, 0.1, size=(1, 400))), {"arm": k}, order=k)

    @findings.finding("Nothing is lost", test="non-inferiority", units="nats/token", source="a test")
    def nothing_lost(results):
        return Evidence(None, threshold=0.02, informative=False, why_uninformative="no baseline")

    verdicts = findings.judge({"shifts": [0.3, 0.0]})
    assert [v.finding for v in verdicts] == ["The effect of arm 0 is positive", "The effect of arm 1 is positive", "Nothing is lost"]
    assert [v.verdict for v in verdicts] == ["reproduced", "not reproduced", "inconclusive"] and verdicts[2].reason == "no baseline"
    assert verdicts[2].threshold == 0.02 and verdicts[0].source == "a test"
    table = verdict_table(verdicts)
    assert len(table) == 2 + 3 and "| — | — | — | 0.0200 | — | no baseline |" in table[-1]
    assert readme_table(verdicts)[2].startswith("| **reproduced** | The effect of arm 0 is positive | +0.2") and "nats/token" in readme_table(verdicts)[2]
    back = Verdict.from_dict(json.loads(json.dumps(verdicts[0].to_dict())))
    assert isinstance(back.difference, PairedDifference) and back.difference.mde == verdicts[0].difference.mde


def test_older_and_foreign_results_files(tmp_path):
    """Files written before a field existed still load (an 'all' row without n; PCFG results without training seeds or
    grammar name); a file of another kind is refused in one line, not a traceback."""
    from metacond import MetacondError
    from metacond.eval_tasks.results import EvalResults
    from metacond.studies.localization.results import LocalizationStudyResults

    old = {"model": "m", "conditions": ["none"], "summary": [{"family": "mcq", "condition": "none", "continent": "all", "metric": "acc",
                                                              "value": 0.3, "stderr": None}]}
    (tmp_path / "eval_results.json").write_text(json.dumps(old))
    ev = EvalResults.load(tmp_path)
    assert ev.summary[0].n is None and ev.value("mcq", "none") == 0.3
    assert ev.to_dict()["summary"] == old["summary"]  # stderr kept on the aggregate row, even when null
    r = json.loads((ROOT / "docs" / "results" / "pcfg-study-cpu" / "results.json").read_text())
    del r["training_seeds"]
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "results.json").write_text(json.dumps(r))
    p = PcfgStudyResults.load(tmp_path / "p")
    assert p.seeds == [r["seed"]] and p.grammar_label == r["preset_config"]["grammar"]
    for load in (PcfgStudyResults.load, LocalizationStudyResults.load, EvalResults.load):
        (tmp_path / "x").mkdir(exist_ok=True)
        (tmp_path / "x" / "results.json").write_text(json.dumps({"models": {}, "bayes": {}, "runs": {}, "plan": {}, "findings": [{"finding": "f"}]}))
        (tmp_path / "x" / "eval_results.json").write_text(json.dumps({"summary": [{"family": "mcq"}]}))
        try:
            load(tmp_path / "x")
        except MetacondError as e:
            assert "this version reads" in str(e) or "lacks" in str(e)
        else:
            raise AssertionError(f"{load.__qualname__} accepted a foreign file")
