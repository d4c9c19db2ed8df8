"""``metacond push``: publish a run or a built dataset to the Hugging Face Hub in one commit.

Example:
  metacond push runs/loc-tiny --repo-id someone/loc-tiny --private true --dry-run true

A run directory (``config.json`` + ``training_summary.json``) goes to a model repo: weights, config,
generation config, tokenizer, training summary, curves, evaluation results and a model card (written
from the run when it has no README.md), in one ``create_commit``; each ``checkpoint-*`` folder goes to
its own branch ``step-<N>-tokens-<T>`` (weights, config, tokenizer, trainer state; no optimizer state).
A news or PCFG build goes to a dataset repo: parquet shards, card, tokenizer, reports (not the
``save_to_disk`` Arrow copies). The token comes from ``HF_TOKEN`` or ``huggingface-cli login``, never
from a flag, and is never written anywhere. Only regular files inside the directory are pushed;
symlinks that leave it and files that look like secrets are refused and listed. ``--dry-run`` prints
the operations and touches no network.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from metacond import MetacondError

if TYPE_CHECKING:
    from metacond.training.arguments import HubTarget

SECRET_PATTERNS = (".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*", ".netrc", ".git-credentials", "*credentials*",
                   "*secret*", "token", "*.token", "hf_token*", ".npmrc", ".pypirc")
MODEL_SKIP = ("optimizer.pt", "scheduler.pt", "rng_state*.pth", "training_args.bin", "*.tmp", "scaler.pt")
CHECKPOINT_KEEP = ("config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer*", "special_tokens_map.json",
                   "trainer_state.json", "chat_template.jinja")


@dataclass
class PushArguments:
    path: str | None = field(default=None, metadata={"help": "Run directory (metacond pretrain output) or dataset build directory."})
    repo_id: str | None = field(default=None, metadata={"help": "Hub repository, USER/NAME."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to commit to (default: main)."})
    create_pr: bool = field(default=False, metadata={"help": "Open a pull request instead of committing to the branch."})
    dry_run: bool = field(default=False, metadata={"help": "List the operations; no network."})
    checkpoints: bool = field(default=True, metadata={"help": "Also push checkpoint-* folders, each to a branch step-<N>-tokens-<T>."})
    commit_message: str | None = field(default=None, metadata={"help": "Commit message (default: describes the upload)."})

    def __post_init__(self) -> None:
        if not self.path:
            raise MetacondError("give the directory to push: metacond push DIR --repo-id USER/NAME")
        if not self.repo_id or self.repo_id.count("/") != 1 or not all(self.repo_id.split("/")):
            raise MetacondError(f"--repo-id must be USER/NAME, got {self.repo_id!r}")
        if not Path(self.path).is_dir():
            raise MetacondError(f"{self.path!r} is not a directory")


def kind_of(d: Path) -> str:
    if (d / "config.json").is_file() and (d / "training_summary.json").is_file():
        return "model"
    if (d / "build_report.json").is_file() or (d / "metacond_build.json").is_file():
        return "dataset"
    raise MetacondError(f"{d} is neither a finished metacond run (config.json + training_summary.json) nor a dataset build (build_report.json)")


def _is_secret(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1].lower()
    return any(fnmatch.fnmatch(name, p) for p in SECRET_PATTERNS)


def collect_files(root: Path, include=None, exclude=(), skip_dirs=()) -> tuple[list[str], list[str]]:
    """(files to push, refused with a reason) — paths relative to ``root``, sorted."""
    root_real = root.resolve()
    files, refused = [], []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root)
        keep_dirs = []
        for dn in sorted(dirnames):
            rel = (rel_dir / dn).as_posix()
            full = Path(dirpath) / dn
            if full.is_symlink():
                refused.append(f"{rel} (symlink to a folder)")
            elif not any(fnmatch.fnmatch(rel, s) or fnmatch.fnmatch(dn, s) for s in skip_dirs):
                keep_dirs.append(dn)
        dirnames[:] = keep_dirs
        for fn in sorted(filenames):
            rel = (rel_dir / fn).as_posix()
            full = Path(dirpath) / fn
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(root_real) or not target.is_file():
                    refused.append(f"{rel} (symlink leaving the directory)")
                    continue
            if _is_secret(rel):
                refused.append(f"{rel} (looks like a secret)")
                continue
            if include is not None and not any(fnmatch.fnmatch(fn, p) or fnmatch.fnmatch(rel, p) for p in include):
                continue
            if any(fnmatch.fnmatch(fn, p) for p in exclude):
                continue
            files.append(rel)
    return sorted(files), refused


def _checkpoint_branch(ckpt: Path) -> str:
    step = ckpt.name.split("-")[-1]
    state = ckpt / "trainer_state.json"
    tokens = None
    if state.is_file():
        try:
            tokens = json.loads(state.read_text()).get("num_input_tokens_seen")
        except json.JSONDecodeError:
            tokens = None
    return f"step-{step}-tokens-{tokens}" if tokens is not None else f"step-{step}"


def plan_push(args: PushArguments) -> dict[str, Any]:
    """The exact operations: repo creation, branches and commits (files with their source)."""
    assert args.path is not None, "PushArguments.__post_init__ requires the directory"
    root = Path(args.path)
    kind = kind_of(root)
    commits: list[dict[str, Any]] = []
    generated: dict[str, str] = {}
    if kind == "model":
        files, refused = collect_files(root, exclude=MODEL_SKIP, skip_dirs=("checkpoint-*", "runs", "_*", ".*"))
        if "README.md" not in files:
            from .model_card import build_model_card

            generated["README.md"] = str(build_model_card(root, repo_id=args.repo_id))
            files.append("README.md")
        if args.checkpoints:
            for ck in sorted(root.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else 0):
                if not ck.is_dir() or ck.is_symlink():
                    continue
                ck_files, ck_refused = collect_files(ck, include=CHECKPOINT_KEEP)
                refused += [f"{ck.name}/{r}" for r in ck_refused]
                commits.append({"revision": _checkpoint_branch(ck), "create_branch": True, "create_pr": False,
                                "message": f"{ck.name} of {root.name}", "files": [(str(ck / f), f) for f in ck_files]})
    else:
        files, refused = collect_files(root, skip_dirs=("hf", "_work", ".*", "cache*"))
        if "README.md" not in files:
            raise MetacondError(f"{root} has no README.md dataset card; rebuild it with metacond news build / metacond pcfg build")
    main = {"revision": args.revision or "main", "create_branch": bool(args.revision and args.revision != "main"), "create_pr": args.create_pr,
            "message": args.commit_message or f"Upload {kind} {root.name} with metacond",
            "files": sorted([(generated.get(f) and "<generated model card>" or str(root / f), f) for f in files], key=lambda t: t[1])}
    return {"repo_id": args.repo_id, "repo_type": kind, "private": args.private, "commits": [main] + commits, "refused": refused,
            "generated": generated}


def execute(plan: dict[str, Any], api=None) -> list[Any]:
    """Create the repo, branches and one commit per entry; returns the commit infos."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = api or HfApi()  # token: HF_TOKEN or the cached login
    api.create_repo(repo_id=plan["repo_id"], repo_type=plan["repo_type"], private=plan["private"], exist_ok=True)
    infos = []
    for c in plan["commits"]:
        if c["create_branch"]:
            api.create_branch(repo_id=plan["repo_id"], repo_type=plan["repo_type"], branch=c["revision"], exist_ok=True)
        ops = [CommitOperationAdd(path_in_repo=dst, path_or_fileobj=plan["generated"][dst].encode() if src == "<generated model card>" else src)
               for src, dst in c["files"]]
        infos.append(api.create_commit(repo_id=plan["repo_id"], repo_type=plan["repo_type"], operations=ops, commit_message=c["message"],
                                       revision=c["revision"], create_pr=c["create_pr"]))
    return infos


def describe(plan: dict[str, Any]) -> str:
    lines = [f"create_repo {plan['repo_id']} (type {plan['repo_type']}, private {plan['private']}, exist_ok)"]
    for c in plan["commits"]:
        if c["create_branch"]:
            lines.append(f"create_branch {c['revision']}")
        lines.append(f"create_commit on {c['revision']}{' as a pull request' if c['create_pr'] else ''}: {c['message']!r}, {len(c['files'])} files")
        lines += [f"  + {dst}" for _, dst in c["files"]]
    for r in plan["refused"]:
        lines.append(f"refused: {r}")
    return "\n".join(lines)


def push(args: PushArguments) -> dict[str, Any]:
    plan = plan_push(args)
    if args.dry_run:
        return plan
    try:
        plan["commit_urls"] = [str(getattr(i, "commit_url", i)) for i in execute(plan)]
    except MetacondError:
        raise
    except Exception as e:  # hub errors (auth, offline, permissions) come in many types; one line for the user
        raise MetacondError(f"push to {args.repo_id} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    return plan


def publish_run(out: Path, target: HubTarget) -> dict[str, Any]:
    """The publisher ``metacond pretrain`` hands to pretraining: the finished run, in one commit, as ``metacond push`` sends it."""
    return push(PushArguments(path=str(out), repo_id=target.repo_id, private=target.private, revision=target.revision))


def main(argv: Sequence[str] | None = None) -> int:
    from metacond.config import parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):
        argv = ["--path", argv[0]] + argv[1:]
    # HfArgumentParser already takes --repo-id for --repo_id and a bare --dry-run / --private as true.
    (args,) = parse_config([PushArguments], argv, prog="metacond push", description=__doc__)
    plan = push(args)
    print(describe(plan))
    if args.dry_run:
        print("dry run: nothing was sent")
    else:
        print("pushed: " + ", ".join(plan.get("commit_urls", [])))
    return 0


if __name__ == "__main__":
    from metacond.cli import run_guarded

    sys.exit(run_guarded(main, sys.argv[1:], "metacond push"))
