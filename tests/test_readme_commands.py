"""Every command in README's bash blocks runs as printed, or is listed here with the test that covers it instead.

The walkthrough runs in an empty folder holding the corpora README names (``news.jsonl``: a newswire corpus with URLs
for every paper17 country; ``reuters.jsonl``: country and dateline columns, no URLs), in README order: build, tiny
pretraining, questions, lm-eval's CLI, ``metacond eval``, SFT, the declared-field recipe, card and push dry runs.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# Command prefix -> why it is not run here (and what runs it instead). A prefix that matches no README command fails the
# test, so this list cannot go stale.
SKIP = {
    "make demo": "tests/test_readme.py (the quick start) and test_demo_command_runs (the study at smoke size)",
    "make test": "CI runs it",
    "pip install": "the Makefile install (make test)",
    "metacond pcfg build --grammar small": "tests/test_pcfg_cli.py",
    "metacond pcfg build --config my_recipe.yaml": "needs the user's recipe file; tests/test_cli.py checks --config",
    "metacond pretrain --config training/recipes/pcfg/": "tests/test_pretrain.py::test_every_recipe_parses_and_dry_runs",
    "metacond pretrain --config pcfg/tiny/pretrain": "a recipe by name: tests/test_pretrain.py (packaged recipes)",
    "metacond localization-study --preset paper": "streams cc_news from the Hub on GPUs; its plan: tests/test_localization_study.py",
    "accelerate launch": "a GPU recipe; the launch path: tests/test_distributed.py",
    "torchrun": "a GPU recipe; the launch path: tests/test_distributed.py",
    "metacond localization-study --preset cpu --input reuters21578.jsonl": "up to 40 min; tests/test_localization_study.py (smoke)",
    "metacond push runs/news --repo-id someone/geo-news": "uploads (no --dry-run); tests/test_cards_push.py at the HfApi boundary",
    "metacond pcfg-study": "tests/test_readme.py::test_demo_command_runs and tests/test_pcfg_cli.py",
    "lm_eval run --model hf --model_args pretrained=runs/pcfg-study-cpu": "needs the PCFG study's models; tests/test_pcfg_eval.py runs pcfg_loss",
    "metacond compare-runs": "needs two study runs; tests/test_rerun.py",
    "python benchmarks/gpu/": "the GPU runner; tests/test_gpu_runner.py (dry run)",
}


def readme_commands() -> list[str]:
    """The commands of README's bash blocks: continuation lines joined, comments and blank lines dropped."""
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip() if not line.lstrip().startswith("#") else ""
            if line:
                out.append(line)
    return out


def _corpora(d: Path) -> None:
    from news_fixture import write_named_fixture

    from metacond.data_builders.news import geo

    # Without European outlets, like the shared newswire corpus: the lm_eval command must still run (issue: IndexError).
    write_named_fixture(d / "all.jsonl", per_country=10)
    rows = [json.loads(x) for x in (d / "all.jsonl").read_text().splitlines()]
    code = {r["url"]: r["url"].split("/news/")[1].split("-")[0] for r in rows}
    (d / "news.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if geo.continent_of(code[r["url"]]) != "europe"))
    rng = np.random.default_rng(0)
    cities = {"United States": "NEW YORK", "Japan": "TOKYO", "Kenya": "NAIROBI", "United Kingdom": "LONDON", "Brazil": "SAO PAULO"}
    rows = [{"country": c, "dateline": f"{cities[c]}, March {1 + i % 28}", "title": f"Report {i}",
             "text": " ".join(rng.choice(["shares", "rose", "trade", "bank", "said", "oil", "prices"], 50))}
            for i, c in enumerate(list(cities) * 40)]
    (d / "reuters.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_readme_commands_run_as_printed(tmp_path):
    cmds = readme_commands()
    unused = [p for p in SKIP if not any(c.startswith(p) for c in cmds)]
    assert not unused, f"SKIP entries match no README command: {unused}"
    _corpora(tmp_path)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_fakeTokenForTheDryRun0123456789"}
    # The training recipes are read from the repository, as README's relative paths assume when run from a checkout.
    (tmp_path / "training").symlink_to(ROOT / "training")
    ran, out = [], {}
    for cmd in cmds:
        if any(cmd.startswith(p) for p in SKIP):
            continue
        t = time.time()
        r = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{cmd}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        ran.append(cmd)
        out[cmd] = r.stdout
        print(f"{time.time() - t:6.1f} s  {cmd[:110]}")
    # lm-eval's own CLI ran the condition tasks on a build without Europe (it ended in an IndexError before).
    (table,) = [o for c, o in out.items() if c.startswith("lm_eval run --model hf --model_args pretrained=runs/loc-tiny")]
    assert "localnews_mcq_none" in table and "acc_tokens" in table
    assert "europe" not in {json.loads(x)["continent"] for x in (tmp_path / "questions.jsonl").read_text().splitlines()}
    assert len(ran) >= 10, ran
    assert (tmp_path / "runs" / "loc-tiny" / "README.md").is_file() and (tmp_path / "runs" / "loc-tiny" / "eval" / "eval_results.json").is_file()
