"""mypy, basic mode, on the whole installed package (settings in pyproject.toml): every cross-folder import resolves."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_package_type_checks(tmp_path):
    # A fresh cache: CI starts from one, and a cache shared with a developer's runs could hide an import that no longer resolves.
    r = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "Success: no issues found" in r.stdout


def test_type_checker_sees_a_broken_cross_folder_import(tmp_path):
    """The check can fail: a module importing a name another folder does not define is reported (the link tree makes the
    folders one package for mypy, as for Python)."""
    import shutil

    import metacond

    tree = tmp_path / "site"
    shutil.copytree(Path(metacond.__file__).parent, tree / "metacond", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "metacond" / "studies" / "broken.py").write_text("from metacond.eval_tasks.intervals import NO_SUCH_NAME\n")
    r = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "-p", "metacond.studies.broken"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600, env={"PATH": "", "MYPYPATH": str(tree)})
    assert r.returncode != 0 and 'Module "metacond.eval_tasks.intervals" has no attribute "NO_SUCH_NAME"' in r.stdout, r.stdout[-2000:]
