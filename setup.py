"""Where the packages live; everything else is in pyproject.toml.

The product's parts sit at the repository root (``modeling/``, ``data_builders/``, ...) and install as
subpackages of one import name, ``metacond``, so nothing generic like ``training`` lands in site-packages.
The root package itself lives in ``src/metacond`` so that a checkout's working directory cannot shadow the
installed package. Subpackages are discovered: a new folder with an ``__init__.py`` ships without an edit here.
"""

from setuptools import find_packages, setup

# The parts, bottom layer first (README "Layers"; the import-linter contract in pyproject.toml checks it).
PARTS = ("modeling", "data_builders", "training", "eval_tasks", "model_cards", "studies")

packages = ["metacond", *(f"metacond.{p}" for p in find_packages("src/metacond"))]
for part in PARTS:
    packages += [f"metacond.{part}", *(f"metacond.{part}.{p}" for p in find_packages(part))]

setup(packages=packages, package_dir={"metacond": "src/metacond", **{f"metacond.{part}": part for part in PARTS}})
