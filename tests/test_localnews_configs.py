"""The localnews task YAMLs are generated from one matrix; continents are defined once."""

import re
import subprocess
import sys

from metacond.eval_tasks import TASK_DIR

FOLDER = TASK_DIR / "localnews"


def test_regenerating_changes_nothing():
    sys.path.insert(0, str(FOLDER))
    import _generate_configs as g

    want, have = g.render_all(), g.generated_on_disk(FOLDER)
    assert set(want) == set(have), sorted(set(want) ^ set(have))
    stale = [n for n in want if want[n] != have[n]]
    assert not stale, stale[:5]
    # The matrix is the product it claims: per family and condition one task over every continent and one per continent,
    # and one group per family.
    from metacond.eval_tasks.localnews.conditions import CONTINENTS, FAMILIES

    assert len(want) == sum(len(f.conditions) * (len(CONTINENTS) + 1) + 1 for f in FAMILIES)
    assert "version: 3.0" in want["localnews_mcq_url_africa.yaml"] and "url_style: null" in want["localnews_ppl_full_asia.yaml"]
    assert "continent: null" in want["localnews_mcq_url.yaml"] and "group:" not in want["localnews_mcq_url.yaml"]


def test_continent_tuple_is_written_once():
    root = TASK_DIR.parent
    hits = []
    for folder in ("data_builders", "eval_tasks", "training", "cli", "model_cards"):
        for p in (root / folder).rglob("*.py"):
            if re.search(r'\(\s*"africa",\s*"america",\s*"asia",\s*"europe"\s*\)', p.read_text()):
                hits.append(str(p.relative_to(root)))
    assert hits == ["data_builders/news/geo.py"], hits


def test_every_family_validates():
    """lm-eval's own validator on tasks of every family (one subprocess: lm-eval's import dominates its time)."""
    tasks = ",".join(["localnews_mcq_full", "localnews_mcq_none_asia", "localnews_gen_full_africa", "localnews_gen_none", "localnews_letter_full_africa",
                      "localnews_official_full", "localnews_official_none_europe", "localnews_ppl_full_asia", "localnews_ppl_trained"])
    r = subprocess.run([sys.executable, "-m", "lm_eval", "validate", "--tasks", tasks, "--include_path", str(FOLDER)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
