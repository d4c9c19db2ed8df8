"""The README's quick start: exactly two commands, CI runs the test one, the demo command works."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def make_recipe(target):
    lines = (ROOT / "Makefile").read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[i + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_two_commands_and_ci_uses_the_test_one():
    cmds = quick_start_commands()
    assert cmds == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    # The install path keeps the CPU torch pin.
    install = "\n".join(make_recipe("$(STAMP)"))
    assert "-c constraints.txt torch==2.13.0" in install and "torch==2.13.0" in (ROOT / "constraints.txt").read_text()
    assert "pytest" in make_recipe("test")[0]


@pytest.mark.slow
def test_demo_command_runs(tmp_path):
    (cmd,) = make_recipe("demo")
    argv = shlex.split(cmd.replace("$(BIN)/", ""))
    assert argv[:2] == ["metacond", "pcfg-study"] and argv[argv.index("--preset") + 1] == "cpu"
    # The same command at test-suite size: only the preset and the output directory change.
    argv[argv.index("--preset") + 1] = "smoke"
    argv[argv.index("--output_dir") + 1] = str(tmp_path / "study")
    r = subprocess.run([sys.executable, "-m", "metacond", *argv[1:]], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "report:" in r.stdout
    assert (tmp_path / "study" / "report.md").exists() and (tmp_path / "study" / "probing.png").exists()


@pytest.mark.parametrize("marker,module,results", [
    ("pcfg-reference", "metacond.studies.pcfg.report", "docs/results/pcfg-study-cpu/results.json"),
    ("localization-reference", "metacond.studies.localization.report", "docs/results/localization-study-cpu/results.json"),
])
def test_reference_run_paragraphs_are_generated_from_results(marker, module, results):
    """README's numbers on the committed reference runs come from their results.json, whatever the verdicts are."""
    import importlib

    from metacond.eval_tasks.pcfg.results import PcfgStudyResults
    from metacond.studies.localization.results import LocalizationStudyResults

    readme = (ROOT / "README.md").read_text()
    start, end = f"<!-- {marker}:start -->\n", f"<!-- {marker}:end -->"
    block = readme[readme.index(start) + len(start): readme.index(end)]
    results_of = PcfgStudyResults.load if "pcfg" in module else LocalizationStudyResults.load
    want = importlib.import_module(module).readme_summary(results_of(ROOT / results))
    assert block == want
