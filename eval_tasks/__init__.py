"""Evaluations: lm-eval task folders (``localnews/``, ``pcfg_loss/``; use ``--include_path`` with ``TASK_DIR``) and the PCFG evaluations (``pcfg/``)."""

from pathlib import Path

TASK_DIR = Path(__file__).resolve().parent
