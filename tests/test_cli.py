"""The metacond command: --help everywhere, one-line errors, install layout."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from metacond.main import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "metacond", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_top_level_help_is_lazy_and_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out
    # --help does not import the heavy stack.
    r = subprocess.run([sys.executable, "-c", "import sys; from metacond.main import main; main(['--help']); "
                        "print(json.dumps(sorted(m for m in ('torch','transformers','datasets') if m in sys.modules)))".replace("json.dumps", "__import__('json').dumps")],
                       capture_output=True, text=True)
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("argv", [["pcfg", "--help"], ["pcfg", "build", "--help"], ["pcfg", "grammar", "--help"],
                                  ["pcfg", "validate", "--help"], ["pcfg", "parse", "--help"], ["pretrain", "--help"],
                                  ["news", "--help"], ["news", "build", "--help"], ["news", "mcq", "--help"], ["pcfg-study", "--help"],
                                  ["eval", "--help"], ["sft", "--help"], ["card", "--help"], ["push", "--help"], ["localization-study", "--help"],
                                  ["compare-runs", "--help"]])
def test_every_subcommand_has_help_with_example(argv):
    r = run(*argv)
    assert r.returncode == 0, r.stderr
    assert f"metacond {argv[0]}" in r.stdout and "--help" not in r.stderr
    assert "Example" in r.stdout or "Examples" in r.stdout


@pytest.mark.parametrize("argv,msg", [
    (["pcfg", "build", "--metadata_depth", "6", "--train_size", "10"], "exceeds the grammar depth D=5"),
    (["pcfg", "build", "--train_size", "-5"], "train_size must be >= 0"),
    (["pcfg", "build", "--no_such_flag", "1"], "unknown arguments: --no_such_flag"),
    (["pcfg", "validate", "missing.json"], "does not exist"),
    (["pcfg", "frobnicate"], "unknown pcfg subcommand"),
    (["nosuchcommand"], "unknown command"),
])
def test_errors_are_one_line(argv, msg, tmp_path):
    r = run(*argv, cwd=tmp_path)
    assert r.returncode == 2
    assert msg in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_recipe_keys_listed(tmp_path):
    (tmp_path / "r.yaml").write_text("grammar: small\nmetadata_dept: 3\nbogus: 1\n")
    r = run("pcfg", "build", "--config", str(tmp_path / "r.yaml"))
    assert r.returncode == 2 and "unknown keys bogus, metadata_dept" in r.stderr
    (tmp_path / "b.yaml").write_text("grammar: [small\n")
    r = run("pcfg", "build", "--config", str(tmp_path / "b.yaml"))
    assert r.returncode == 2 and "invalid YAML" in r.stderr and "Traceback" not in r.stderr


def test_grammar_validate_and_parse_commands(tmp_path):
    out = tmp_path / "g.json"
    r = run("pcfg", "grammar", "--preset", "tiny", "--seed", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = run("pcfg", "validate", str(out))
    assert r.returncode == 0 and "ok" in r.stdout
    bad = json.loads(out.read_text())
    bad["rules"][0]["rhs"] = ["N1_0", "Q"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    r = run("pcfg", "validate", str(tmp_path / "bad.json"))
    assert r.returncode == 2 and "undefined symbol 'Q'" in r.stderr
    r = run("pcfg", "parse", "--grammar", str(out), "t0 t1 t0 t0", "t1 t1")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 2 and all("accepted" in x for x in rows)


def test_build_yaml_recipe_with_override(tmp_path):
    (tmp_path / "r.yaml").write_text("# Data\ngrammar: tiny\nmetadata_depth: 1\ntrain_size: 30\nvalidation_size: 5\ntest_size: 5\nbayes_sample: 5\n")
    r = run("pcfg", "build", "--config", str(tmp_path / "r.yaml"), "--metadata_depth", "2", "--output_dir", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    info = json.loads((tmp_path / "o" / "metacond_build.json").read_text())
    assert info["config"]["metadata_depth"] == 2 and info["config"]["train_size"] == 30


def test_packages_install_under_metacond_only(tmp_path):
    for sub in ("modeling", "data_builders", "training", "eval_tasks", "model_cards", "studies"):
        spec = importlib.util.find_spec(f"metacond.{sub}")
        # The strict editable install links each file from build/; the link leads to the checkout's folder.
        assert spec is not None and Path(spec.origin).resolve().parent == ROOT / sub
    # Outside the checkout, no generic top-level name is importable.
    code = "import importlib.util as u, json; print(json.dumps([m for m in ('training','modeling','data_builders','model_cards','eval_tasks','cli') if u.find_spec(m)]))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert json.loads(r.stdout) == []


def test_every_module_has_one_name():
    """No second copy of the root package (it had its own MetacondError class), no namespace-package tests or benchmarks,
    and no product file that edits ``__path__`` or ``sys.path`` to make such names resolve."""
    for name in ("metacond.metacond", "metacond.tests", "metacond.benchmarks", "metacond.src"):
        r = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr, name
    edits = re.compile(r"__path__\s*(\.|\+?=)|sys\.path\s*(\.|\+?=|\[)")
    product = [p for part in ("src", "modeling", "data_builders", "training", "eval_tasks", "model_cards", "studies") for p in (ROOT / part).rglob("*.py")]
    assert len(product) > 60
    assert [str(p.relative_to(ROOT)) for p in product if edits.search(p.read_text())] == []


def test_regular_wheel_holds_only_the_metacond_package(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    import zipfile

    (whl,) = tmp_path.glob("metacond-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"metacond", whl.name.split("-")[0] + "-" + whl.name.split("-")[1] + ".dist-info"}
    for must in ("metacond/main.py", "metacond/data_builders/pcfg/chart.py", "metacond/modeling/tokenizer.py", "metacond/training/__init__.py",
                 "metacond/studies/localization/study.py", "metacond/model_cards/push.py", "metacond/eval_tasks/localnews/_gen_template_yaml",
                 "metacond/eval_tasks/localnews/localnews_ppl_url_country_asia.yaml", "metacond/training/recipes/pcfg/tiny/pretrain.yaml",
                 "metacond/training/recipes/localization/1b/meco_stage2.yaml", "metacond/training/accelerate/ddp.yaml"):
        assert must in names
    # Subpackages are discovered: every package folder of the checkout is in the wheel, none listed by hand.
    parts = {"src/metacond": "metacond", **{p: f"metacond/{p}" for p in ("modeling", "data_builders", "training", "eval_tasks", "model_cards", "studies")}}
    folders = [(root, f"{pkg}/{init.parent.relative_to(ROOT / root)}".rstrip("/.")) for root, pkg in parts.items() for init in (ROOT / root).rglob("__init__.py")]
    assert len(folders) >= 14
    assert [f for _, f in folders if f"{f}/__init__.py" not in names] == []


@pytest.mark.slow
def test_wheel_installed_elsewhere_runs_a_recipe_by_name(tmp_path):
    """A non-editable install of the wheel, used from outside the checkout, finds its packaged recipes."""
    import sysconfig

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = (tmp_path / "dist").glob("metacond-*.whl")
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(whl)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True, timeout=120)
    # The wheel's copy first; the project venv's site-packages only for third-party dependencies (as a plain path, so its
    # editable-install hook is not loaded).
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{site}:{sysconfig.get_paths()['purelib']}"}
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = "import metacond, metacond.config as c; print(metacond.__file__); print(c.resolve_recipe('pcfg/tiny/pretrain'))"
    r = subprocess.run([str(fresh / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=work, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    where, recipe = r.stdout.split()
    assert where.startswith(str(site)) and recipe.startswith(str(site))
    r = subprocess.run([str(fresh / "bin" / "python"), "-m", "metacond", "pretrain", "--config", "pcfg/tiny/pretrain", "--output_dir", "run", "--dry_run", "true"],
                       capture_output=True, text=True, cwd=work, env={**env, "METACOND_CACHE": str(tmp_path / "cache")}, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '"dry_run"' in r.stdout and '"model_size": "tiny"' in r.stdout


def test_help_reads_top_down_and_negated_switches_say_what_they_do(tmp_path):
    r = run("pretrain", "--help", cwd=tmp_path)
    lines = r.stdout.splitlines()
    assert lines[0] == "usage: metacond pretrain [--config RECIPE.yaml] [options]"
    assert any("metacond pretrain --config" in ln for ln in lines[:12])  # the example comes before the options
    groups = [ln for ln in lines[lines.index("options:"):] if ln and not ln.startswith(" ") and ln.endswith(":")]
    assert groups[:4] == ["options:", "model:", "data:", "metadata schedule:"] and groups[-1].startswith("optimization and Trainer")
    neg = next(ln for ln in lines if ln.strip().startswith("--no_plot"))
    assert "Turn off --plot" in neg and "Write loss_curve" not in neg
    assert "(default: " in r.stdout


def test_top_level_help_is_aligned_and_exits_zero(tmp_path):
    r = run(cwd=tmp_path)
    assert r.returncode == 0
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("  ") and not ln.startswith("   ") and "metacond " not in ln]
    starts = {len(ln) - len(ln[2:].split("  ", 1)[1].lstrip()) for ln in rows if "  " in ln[2:]}
    assert len(rows) >= 9 and len(starts) == 1, rows


def test_help_into_a_closed_pipe_and_newline_defaults():
    # `metacond --help | head`: the reader is gone before we write; no traceback, the shell's SIGPIPE status.
    p = subprocess.Popen([sys.executable, "-m", "metacond", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() == 141 and "Traceback" not in err, err
    # Defaults holding a newline print as literals, not blank space.
    out = run("news", "build", "--help").stdout
    assert "(default: '{NAME}: {value}\\n')" in out and "(default: '\\n')" in out
