"""The layers of README "Layers", checked by import-linter on the installed package (the contract is in pyproject.toml)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import metacond

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())", "--no-cache"]


def _lint(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, **env})


def test_layers_contract_is_kept():
    r = _lint()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 kept, 0 broken" in r.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The same check fails the day a lower layer imports a higher one (here: the modeling layer importing a study)."""
    tree = tmp_path / "site"
    shutil.copytree(Path(metacond.__file__).parent, tree / "metacond", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "metacond" / "modeling" / "upward.py").write_text("from metacond.studies.report_kit import Findings\n")
    r = _lint(PYTHONPATH=str(tree))
    assert r.returncode != 0
    assert "metacond.modeling is not allowed to import metacond.studies" in r.stdout and "metacond.modeling.upward" in r.stdout
