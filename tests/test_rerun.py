"""metacond compare-runs: two runs of a study side by side (overlap and word compatibility)."""

import json
import subprocess
import sys

import numpy as np

from metacond.eval_tasks.stats import non_inferiority, paired_difference, superiority
from metacond.studies.rerun import compare, render, words_compatible


def _results(path, shift: float, seed: int):
    rng = np.random.default_rng(seed)
    big = rng.normal(0.08, 0.05, size=(1, 2000))  # a clear effect, the same in every run
    null = rng.normal(shift, 0.05, size=(1, 2000))  # nothing, powered
    verdicts = [superiority("metadata lowers the loss", paired_difference(big, seed=0), 0.04, "nats/token"),
                non_inferiority("no worse without metadata", paired_difference(null, seed=0), 0.01, "nats/token")]
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps({"findings": [v.to_dict() for v in verdicts]}))
    return verdicts


def test_two_close_runs_survive_and_a_shifted_run_does_not(tmp_path):
    a, b = _results(tmp_path / "a", 0.0, 1), _results(tmp_path / "b", 0.0005, 2)
    rows = compare(a, b)
    assert all(r.overlap and r.compatible for r in rows)
    assert "every finding survives the rerun" in render(rows)
    shifted = _results(tmp_path / "c", 0.03, 3)  # the second claim now fails its margin: a definite word against a definite word
    rows = compare(a, shifted)
    bad = [r for r in rows if not r.compatible or r.overlap is False]
    assert [r.finding for r in bad] == ["no worse without metadata"] and "**conflict**" in render(rows)
    r = subprocess.run([sys.executable, "-m", "metacond", "compare-runs", str(tmp_path / "a"), str(tmp_path / "c"), "--output", str(tmp_path / "t.md")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "no worse without metadata" in r.stdout and (tmp_path / "t.md").read_text() == r.stdout
    r = subprocess.run([sys.executable, "-m", "metacond", "compare-runs", str(tmp_path / "a"), str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no such results file" in r.stderr and "Traceback" not in r.stderr


def test_word_compatibility_rule():
    assert words_compatible("reproduced", "inconclusive") and words_compatible("not reproduced", "not reproduced")
    assert not words_compatible("not reproduced", "reproduced") and not words_compatible("contradicted", "reproduced")
