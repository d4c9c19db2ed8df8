"""Option orders, named scoring rules and the position-bias table of the localized MCQ families.

Option orders: every question is asked once per cyclic rotation of its options — order ``r`` puts
option ``(i + r) mod n`` of the data file in slot ``i`` — so each option (the gold one included) sits
in every slot exactly once. Accuracy is the mean over all (question, order) pairs, i.e. each question's
accuracy averaged over its ``n`` orders. A model that always picks slot A scores exactly ``1/n`` whatever
the file's answer positions (the published file has the answer first in 780 of 800 rows), and a
log-likelihood tie (which lm-eval's argmax breaks toward slot A) no longer favours the data's first option.

Scoring rules (names used in ``metacond eval``'s outputs):
- ``sum``: summed log-likelihood of the option's continuation (lm-eval ``acc``; the reference's
  ``option_text_sum``).
- ``option_text_avg``: the same divided by its number of scored tokens (the reference work's default).
- ``byte_norm``: summed log-likelihood per UTF-8 byte of the option text (lm-eval ``acc_bytes``).
- ``option_letter``: log-likelihood of the letters " A" … " D" after a prompt listing lettered options
  (the ``letter`` family).
- ``generative``: a generated answer, its letter parsed (``utils.parse_answer``); an unparsed answer is
  counted wrong (``unparsed="wrong"``, default) or left out of the denominator (``unparsed="exclude"``,
  the reference work's older generative evaluation).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

LOGLIK_RULES = ("sum", "option_text_avg", "byte_norm")
RULES_OF_FAMILY = {"mcq": LOGLIK_RULES, "official": LOGLIK_RULES, "letter": ("option_letter",), "gen": ("generative",)}
UNPARSED_RULES = ("wrong", "exclude")


def rotate(options: Sequence[str], r: int) -> list[str]:
    """Order ``r``: slot ``i`` holds option ``(i + r) mod n``."""
    n = len(options)
    return [options[(i + r) % n] for i in range(n)]


def rotated_gold(gold: int, r: int, n: int) -> int:
    """The slot of the data file's option ``gold`` under order ``r``."""
    return (gold - r) % n


def argmax_first(scores: Sequence[float]) -> int:
    """Index of the largest score; ties go to the lowest slot, as lm-eval's numpy argmax."""
    best = 0
    for i, s in enumerate(scores):
        if s > scores[best]:
            best = i
    return best


def predict(rule: str, lls: Sequence[float], n_tokens: Sequence[int] | None = None, choices: Sequence[str] | None = None) -> int:
    """The slot a log-likelihood rule picks."""
    if rule in ("sum", "option_letter"):
        return argmax_first(lls)
    if rule == "option_text_avg":
        if n_tokens is None:
            raise ValueError("option_text_avg needs the number of scored tokens of each option")
        return argmax_first([ll / max(1, n) for ll, n in zip(lls, n_tokens)])
    if rule == "byte_norm":
        if choices is None:
            raise ValueError("byte_norm needs the option texts")
        return argmax_first([ll / max(1, len(c.encode("utf-8"))) for ll, c in zip(lls, choices)])
    raise ValueError(f"unknown log-likelihood rule {rule!r}")


def accuracy(preds: Sequence[int | None], golds: Sequence[int], unparsed: str = "wrong") -> float:
    """Mean correctness; ``None`` predictions (unparsed answers) count wrong, or are left out with ``exclude``."""
    if unparsed not in UNPARSED_RULES:
        raise ValueError(f"unparsed must be one of {UNPARSED_RULES}")
    pairs = [(p, g) for p, g in zip(preds, golds) if p is not None or unparsed == "wrong"]
    return sum(p == g for p, g in pairs) / len(pairs) if pairs else float("nan")


def position_bias(preds: Sequence[int | None], golds: Sequence[int], n_options: int) -> list[dict[str, Any]]:
    """One row per slot: how often the gold answer sits there, accuracy on those items, and how often the model picks it."""
    rows = []
    total = len(preds)
    by_gold: dict[int, list[bool]] = defaultdict(list)
    for p, g in zip(preds, golds):
        by_gold[g].append(p == g)
    for slot in range(n_options):
        hits = by_gold.get(slot, [])
        rows.append({"position": "ABCDEFGHIJ"[slot], "n_gold": len(hits), "acc_when_gold_here": sum(hits) / len(hits) if hits else float("nan"),
                     "choice_rate": sum(p == slot for p in preds) / total if total else float("nan")})
    if any(p is None for p in preds):
        rows.append({"position": "unparsed", "n_gold": 0, "acc_when_gold_here": float("nan"), "choice_rate": sum(p is None for p in preds) / total})
    return rows
