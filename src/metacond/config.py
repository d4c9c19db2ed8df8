"""Dataclass configs from ``--config recipe.yaml`` plus CLI overrides, with strict key checking."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

from metacond import MetacondError


def parse_config(dataclass_types: Sequence[type], argv: Sequence[str], prog: str, description: str = "") -> tuple[Any, ...]:
    """Parse ``argv`` into instances of ``dataclass_types`` with ``HfArgumentParser``.

    ``--config FILE`` loads a YAML recipe whose keys become defaults; later flags override them.
    Unknown keys (in the YAML or on the command line) are one error that lists them all.
    """
    import argparse

    from transformers import HfArgumentParser

    class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        """The description (with its example) keeps its lines; every option shows its default."""

        def _get_help_string(self, action):
            # A default holding a newline or tab would print as blank space: show it as a Python literal ('\n').
            if isinstance(action.default, str) and any(c in action.default for c in "\n\t\r"):
                return (action.help or "") + f" (default: {action.default!r})".replace("%", "%%")
            return super()._get_help_string(action)

    argv = list(argv)
    for dc in dataclass_types:
        # One titled group per settings class, in the order given (ours first, the Trainer's last).
        if "_argument_group_name" not in vars(dc):
            setattr(dc, "_argument_group_name", GROUP_TITLES.get(dc.__name__, f"{dc.__name__} options"))  # HfArgumentParser's group title
    # A one-line usage: argparse would otherwise list every option (hundreds with TrainingArguments) before the example.
    parser = HfArgumentParser(list(dataclass_types), prog=prog, description=description, usage=f"{prog} [--config RECIPE.yaml] [options]",
                              formatter_class=Formatter)
    parser.add_argument("--config", type=str, default=None, help="YAML recipe; command-line flags override its values.")
    for action in parser._actions:
        # HfArgumentParser gives a negated switch (--no_plot) the positive switch's help text.
        neg = [o for o in action.option_strings if o.startswith("--no_")]
        if neg and action.help and not action.help.startswith("Turn off"):
            action.help = f"Turn off --{neg[0][5:]}."

    def one_line_error(message: str):
        raise MetacondError(message.splitlines()[0])

    parser.error = one_line_error  # argparse would print the whole usage and exit
    cfg_path = None
    for i, a in enumerate(list(argv)):
        if a == "--config":
            if i + 1 >= len(argv):
                raise MetacondError("--config needs a YAML file path")
            cfg_path = argv[i + 1]
            del argv[i:i + 2]
            break
        if a.startswith("--config="):
            cfg_path = a.split("=", 1)[1]
            del argv[i]
            break
    prefix: list[str] = []
    if cfg_path is not None:
        values = load_yaml_config(cfg_path)
        known = {f.name for dc in dataclass_types for f in dataclasses.fields(dc)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MetacondError(f"{cfg_path}: unknown keys {', '.join(unknown)}")
        # Recipe values go through argparse like flags, so a wrong type fails the same way; later flags win.
        prefix = yaml_to_argv(values)
    try:
        outputs = parser.parse_args_into_dataclasses(args=prefix + argv, return_remaining_strings=True)
    except (ValueError, TypeError) as e:
        raise MetacondError(str(e).splitlines()[0]) from None
    objs, rest = outputs[: len(dataclass_types)], outputs[-1]
    if rest:
        raise MetacondError(f"unknown arguments: {' '.join(rest)}")
    return tuple(objs)


GROUP_TITLES = {
    "ModelArguments": "model", "DataArguments": "data", "MetadataArguments": "metadata schedule", "RunArguments": "run",
    "PretrainingArguments": "optimization and Trainer (transformers.TrainingArguments)", "SFTConfig": "optimization and Trainer (trl.SFTConfig)",
}


def yaml_to_argv(values: dict[str, Any]) -> list[str]:
    import json

    out: list[str] = []
    for k, v in values.items():
        if v is None:
            continue
        if isinstance(v, bool):
            out += [f"--{k}", str(v).lower()]
        elif isinstance(v, (list, tuple)):
            if v:
                out += [f"--{k}", *[json.dumps(x) if isinstance(x, (dict, list)) else str(x) for x in v]]
        elif isinstance(v, dict):
            out += [f"--{k}", json.dumps(v)]
        else:
            out += [f"--{k}", str(v)]
    return out


def recipe_dir() -> Path:
    """The installed package's recipes (training/recipes in a checkout): package data, read as data, so this
    bottom-layer module does not import the training layer."""
    from importlib.resources import files

    return Path(str(files("metacond.training") / "recipes"))


def resolve_recipe(path: str | Path) -> Path:
    """A YAML path, or a recipe name inside the package: ``pcfg/tiny/pretrain`` -> training/recipes/pcfg/tiny/pretrain.yaml."""
    p = Path(path)
    if p.is_file():
        return p
    name = str(path).removeprefix("training/recipes/")
    for cand in (recipe_dir() / name, recipe_dir() / f"{name}.yaml"):
        if cand.is_file():
            return cand
    known = sorted(str(q.relative_to(recipe_dir()).with_suffix("")) for q in recipe_dir().rglob("*.yaml"))
    raise MetacondError(f"config {str(path)!r} is neither a file nor a packaged recipe; recipes: {', '.join(known)}")


def load_yaml_config(path: str | Path) -> dict[str, Any]:
    import yaml

    p = resolve_recipe(path)
    try:
        values = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MetacondError(f"{p}: invalid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(values, dict):
        raise MetacondError(f"{p}: a recipe must be a mapping of keys to values")
    return values
