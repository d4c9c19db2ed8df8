"""Answer-only baselines of a multiple-choice set: how far the options alone, without the question, go.

A benchmark whose answer can be picked from the options alone measures artefacts of how the options
were made. Three probes, each an accuracy in [0, 1] over the questions (chance is 1/4 for four options):

- ``longest``: pick the longest option (characters);
- ``most_frequent``: pick the option written most often in the training split's articles (a name
  frequent in the news is more often sampled as an answer than as a distractor, unless distractors are
  sampled by frequency too);
- ``unigram``: a naive-Bayes model over the lower-cased words of an option (answer vs distractor),
  fit on the other folds of the question set and scored on each held-out fold (``folds`` by a hash of
  the question, so the split does not depend on file order).

Ties count as a uniform random pick among the tied options (credit 1/k), so a rule that cannot tell
options apart scores chance, not the rate of whatever position it would fall back to.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

_WORD = re.compile(r"[A-Za-z0-9]+")


def _credit(scores: Sequence[float], correct: int) -> float:
    best = max(scores)
    tied = [i for i, s in enumerate(scores) if s == best]
    return 1.0 / len(tied) if correct in tied else 0.0


def _accuracy(rows: Sequence[dict[str, Any]], score: Callable[[dict[str, Any], str], float]) -> float:
    if not rows:
        return float("nan")
    return sum(_credit([score(r, o) for o in r["options"]], r["options"].index(r["correct_answer"])) for r in rows) / len(rows)


def longest_option(rows: Sequence[dict[str, Any]]) -> float:
    return _accuracy(rows, lambda r, o: len(o))


def phrase_counts(texts: Iterable[str], phrases: Iterable[str]) -> Counter:
    """Whole-word occurrences of each phrase in the texts (one pass over the words, not one regex per phrase)."""
    wanted = {tuple(_WORD.findall(p)) for p in phrases}
    wanted.discard(())
    lengths = sorted({len(w) for w in wanted})
    counts: Counter = Counter()
    for text in texts:
        words = _WORD.findall(str(text))
        for i in range(len(words)):
            for n in lengths:
                gram = tuple(words[i:i + n])
                if gram in wanted:
                    counts[gram] += 1
    return Counter({" ".join(k): v for k, v in counts.items()})


def most_frequent_option(rows: Sequence[dict[str, Any]], train_texts: Iterable[str]) -> float:
    counts = phrase_counts(train_texts, (o for r in rows for o in r["options"]))
    return _accuracy(rows, lambda r, o: counts[" ".join(_WORD.findall(o))])


def _fold(question: str, folds: int) -> int:
    return int.from_bytes(hashlib.blake2b(question.encode(), digest_size=4).digest(), "little") % folds


def unigram_option_model(rows: Sequence[dict[str, Any]], folds: int = 5) -> float:
    """Cross-fitted naive Bayes over option words: log P(words | answer) - log P(words | distractor), add-one smoothing."""
    if not rows:
        return float("nan")
    words = lambda o: [w.lower() for w in _WORD.findall(o)]  # noqa: E731
    fold_of = [_fold(r["question"], folds) for r in rows]
    credit = 0.0
    for f in range(folds):
        ans: Counter = Counter()
        dis: Counter = Counter()
        for r, fr in zip(rows, fold_of):
            if fr != f:
                for o in r["options"]:
                    (ans if o == r["correct_answer"] else dis).update(words(o))
        vocab = len(set(ans) | set(dis)) + 1
        na, nd = sum(ans.values()) + vocab, sum(dis.values()) + vocab

        def score(o: str) -> float:
            return sum(math.log((ans[w] + 1) / na) - math.log((dis[w] + 1) / nd) for w in words(o))

        for r, fr in zip(rows, fold_of):
            if fr == f:
                credit += _credit([score(o) for o in r["options"]], r["options"].index(r["correct_answer"]))
    return credit / len(rows)


def answer_only_baselines(rows: Sequence[dict[str, Any]], train_texts: Sequence[str] | None) -> dict[str, float | None]:
    """All three baselines; ``most_frequent`` is None without training articles to count in."""
    return {"longest": round(longest_option(rows), 4),
            "most_frequent": None if not train_texts else round(most_frequent_option(rows, train_texts), 4),
            "unigram": round(unigram_option_model(rows), 4)}
