"""`metacond pcfg`: every help example runs as printed; bad input gets one line and exit 2."""

import shlex
import subprocess
import sys

import pytest

from metacond.data_builders.pcfg.cli import EXAMPLES


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "metacond", *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "METACOND_CACHE": str(cwd / "cache")})


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_help_example_runs_as_printed(name, tmp_path):
    (tmp_path / "cache").mkdir()
    argv = shlex.split(EXAMPLES[name])
    assert argv[:2] == ["metacond", "pcfg"]
    if name == "validate":  # the example validates the file the `grammar` example writes
        _run(shlex.split(EXAMPLES["grammar"])[1:], tmp_path)
    r = _run(argv[1:], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert EXAMPLES[name] in _run([*argv[1:3], "--help"], tmp_path).stdout


def test_parse_rejects_bad_metadata_in_one_line(tmp_path):
    r = _run(["pcfg", "parse", "--grammar", "tiny", "t0 t0 t1 t0", "--metadata", "a,b"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "--metadata" in r.stderr


def test_validate_reports_every_file(tmp_path):
    (tmp_path / "ok.txt").write_text("S -> a b\n")
    (tmp_path / "bad1.json").write_text('{"x": 1}')
    (tmp_path / "bad2.txt").write_text("S -> a [0.5] | b [0.7]\n")  # probabilities sum to 1.2
    r = _run(["pcfg", "validate", "ok.txt", "bad1.json", "bad2.txt"], tmp_path)
    assert r.returncode == 2
    assert "ok.txt: ok" in r.stdout and "bad1.json: error" in r.stderr and "bad2.txt: error" in r.stderr
    assert "2 of 3 grammar files are invalid" in r.stderr
