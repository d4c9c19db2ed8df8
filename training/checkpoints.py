"""Which checkpoint a run resumes from: the newest one whose files are complete.

A process killed while the Trainer saves leaves a ``checkpoint-N`` folder with some files missing,
empty or cut short. ``transformers.trainer_utils.get_last_checkpoint`` returns it anyway and the
resume then ends in a traceback. Here every file a resume reads is checked without loading tensors:
``trainer_state.json`` parses, each safetensors file is exactly as long as its header says, and each
``torch.save`` file (optimizer, scheduler, RNG states) has its zip directory at the end. Nothing is
deleted: a bad checkpoint is named and skipped (or, when strict, stops the run).
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path

from metacond import MetacondError

_CKPT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_problem(ckpt: Path, needs_optimizer: bool = True) -> str | None:
    """Why ``ckpt`` cannot be resumed from, or None when its files are complete."""
    state = ckpt / "trainer_state.json"
    try:
        json.loads(state.read_text())["global_step"]
    except FileNotFoundError:
        return "no trainer_state.json"
    except (ValueError, KeyError, TypeError):
        return "trainer_state.json is cut short or not a trainer state"
    weights = sorted(ckpt.glob("*.safetensors")) or sorted(ckpt.glob("pytorch_model*.bin"))
    if not weights:
        return "no model weights"
    for w in weights:
        why = _safetensors_problem(w) if w.suffix == ".safetensors" else _torch_zip_problem(w)
        if why:
            return why
    if needs_optimizer:
        for name in ("optimizer.pt", "scheduler.pt"):
            if not (ckpt / name).is_file():
                return f"no {name}"
    for f in sorted(ckpt.glob("*.pt")) + sorted(ckpt.glob("*.pth")):
        why = _torch_zip_problem(f)
        if why:
            return why
    return None


def _safetensors_problem(f: Path) -> str | None:
    size = f.stat().st_size
    try:
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n)) if 0 < n <= size - 8 else None
    except (struct.error, ValueError):
        header = None
    if header is None:
        return f"{f.name} has no readable header"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        return f"{f.name} is {size:,} bytes, its header says {8 + n + end:,}"
    return None


def _torch_zip_problem(f: Path) -> str | None:
    # torch.save writes a zip archive; its central directory is written last, so a cut file has none.
    if f.stat().st_size == 0 or not zipfile.is_zipfile(f):
        return f"{f.name} is empty or cut short"
    return None


def resume_checkpoint(out: Path, strict: bool = False, needs_optimizer: bool = True, say=print) -> str | None:
    """The newest complete ``checkpoint-N`` in ``out`` (None when there is none). Each newer, incomplete one is named in
    one line via ``say``; with ``strict`` the first such checkpoint stops the run instead."""
    if not out.is_dir():
        return None
    found = sorted(((int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _CKPT.match(p.name))), reverse=True)
    for _, ckpt in found:
        why = checkpoint_problem(ckpt, needs_optimizer)
        if why is None:
            return str(ckpt)
        if strict:
            raise MetacondError(f"checkpoint {ckpt} cannot be resumed from ({why}); remove it or resume without --strict_resume")
        say(f"resume: skipping {ckpt.name} ({why}); it is kept on disk")
    if found:
        say("resume: no complete checkpoint; training starts from step 0")
    return None
