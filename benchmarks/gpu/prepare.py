"""Download the wheels a GPU machine lacks for `benchmarks/gpu/run.py` (run HERE, with network).

The GPU machines this project borrows have no network and a fixed Python (3.12, torch 2.11 CUDA 13,
transformers 5.17, huggingface-hub 1.x, accelerate, peft, numba, tokenizers, numpy, pyarrow, pandas,
fsspec, xxhash, requests, httpx, aiohttp, ...; see ../shared/STACK.md and the device tool's KINDS.md)
but no `datasets`. This fetches exactly the pinned wheels below into a git-ignored folder that
travels with the tree (the device tool's `carry`), and fails if they exceed 60 MiB (the tree may
carry 64 MiB in all; measured 15.5 MiB).

What the runner's stages import and the image lacks: the MFU bench and `metacond pcfg-study` import
`datasets`; the localization study also imports lm-eval (with evaluate and its table/text helpers),
TRL and tldextract. Three of lm-eval's requirements publish no wheel (rouge-score, sqlitedict,
word2number): they are pure Python and built here into wheels (`pip wheel --no-deps`). Versions are
those `make install` resolves on the CPU machine, where the study's tests pass with them.

Example:
  python benchmarks/gpu/prepare.py                       # -> benchmarks/gpu/wheels/
  python benchmarks/gpu/prepare.py --dest /tmp/w --check  # only list what is there and its size
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DEST = HERE / "wheels"
LIMIT_MIB = 60.0

# Why these versions:
# - datasets 5.0.1: the newest release whose requirements fit the GPU image. transformers 5.17 needs
#   huggingface-hub <2.0 (the image has 1.33); datasets 5.0.1 accepts hub >=0.25,<2.0 and pyarrow >=21,
#   while 5.1/5.2 require pyarrow >=24, which the image may lack (pyarrow is ~40 MiB: too big to carry).
# - dill <0.4.2 and multiprocess <0.70.20: datasets 5.0.1's own caps; neither is in the image.
# - fsspec 2026.6.0: datasets 5.0.1 caps fsspec at <=2026.6.0 and the image's version is unknown, so a
#   pinned copy shadows it in the target dir (it is pure Python, ~0.2 MiB).
# - requests (+ urllib3, charset-normalizer) and xxhash: imported by datasets at import time and absent from
#   the image (transformers 5 talks to the Hub through httpx). Found by installing these wheels into a bare
#   CPython 3.12 venv with exactly torch 2.11 + transformers 5.17 + the image's listed packages.
# - setuptools, wheel: build metacond itself offline (`pip install --no-index --find-links`), whatever
#   setuptools the image has (pyproject asks for >=69).
PINNED = [
    "datasets==5.0.1",
    "dill==0.4.1",
    "multiprocess==0.70.19",
    "fsspec==2026.6.0",
    "requests==2.34.2",
    "urllib3==2.8.0",
    "charset-normalizer==3.5.3",
    "xxhash==4.1.0",
    "setuptools==80.9.0",
    "wheel==0.45.1",
    # The localization study (lm-eval, TRL, tldextract and what they need beyond the image: scikit-learn, scipy,
    # sacrebleu, lxml, regex, absl-py, joblib, jinja2, filelock, idna and requests are there).
    "lm_eval==0.4.13",
    "evaluate==0.4.6",
    "trl==1.16.0",
    "tldextract==5.4.0",
    "requests-file==3.0.1",
    "more-itertools==11.2.1",
    "nltk==3.10.4",
    "pytablewriter==1.2.1",
    "DataProperty==1.1.1",
    "mbstrdecoder==1.1.5",
    "typepy==1.3.5",
    "tabledata==1.3.5",
    "tcolorpy==0.1.7",
    "pathvalidate==3.3.1",
    "chardet==6.0.0.post1",
    "defusedxml==0.7.1",  # nltk's (rouge-score imports nltk)
]
# lm-eval's requirements published as source only: pure Python, built into wheels here.
BUILT = [
    "rouge-score==0.1.2",
    "sqlitedict==2.1.0",
    "word2number==1.1",
]

# The GPU machine's interpreter: CPython 3.12 on x86-64 Linux (multiprocess ships per-Python wheels).
PLATFORM_ARGS = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312",
                 "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64", "--platform", "any", "--no-deps"]


def folder_mib(dest: Path) -> float:
    return sum(f.stat().st_size for f in dest.glob("*.whl")) / 2 ** 20


def download(dest: Path, pins: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", *PLATFORM_ARGS, "--dest", str(dest), *pins]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def build(dest: Path, pins: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dest), *pins]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def check(dest: Path, pins: list[str]) -> list[str]:
    """Problems: a pin without its wheel, or two versions of one project (they would stop the install)."""
    names: dict[str, list[str]] = {}
    for f in sorted(dest.glob("*.whl")):
        names.setdefault(f.name.split("-")[0].lower().replace("_", "-"), []).append(f.name)
    problems = [f"{k}: {len(v)} wheels ({', '.join(v)}); keep one" for k, v in names.items() if len(v) > 1]
    for pin in pins:
        name, version = pin.split("==")
        if not any(f"-{version}-" in w for w in names.get(name.lower().replace("_", "-"), [])):
            problems.append(f"{pin}: no wheel in {dest}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST, help=f"wheel folder (default {DEFAULT_DEST.relative_to(HERE.parents[1])})")
    ap.add_argument("--check", action="store_true", help="do not download; only check and size the folder")
    a = ap.parse_args(argv)
    if not a.check:
        download(a.dest, PINNED)
        build(a.dest, BUILT)
    problems = check(a.dest, PINNED + BUILT)
    for f in sorted(a.dest.glob("*.whl")):
        print(f"  {f.stat().st_size / 2 ** 20:7.2f} MiB  {f.name}")
    total = folder_mib(a.dest)
    print(f"total {total:.2f} MiB in {a.dest} (limit {LIMIT_MIB:.0f} MiB)")
    if total > LIMIT_MIB:
        problems.append(f"{total:.1f} MiB exceeds {LIMIT_MIB:.0f} MiB")
    for p in problems:
        print(f"prepare: error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
