"""A localized news multiple-choice benchmark built without an LLM: entity cloze.

From held-out articles, a sentence with a capitalized name (not its first word) becomes the question
with the name blanked; the answer is that name; distractors are names of the answer's type (person,
place, organization, facility, nationality: ``entities.py`` says how spans are typed offline and why
not spaCy) — two from other countries' articles and one from another article of the same country
(three from other countries when the country has no other name of that type) — so only knowledge of
local news separates them. Distractors are drawn per occurrence, not per distinct name, so frequent
names are as likely to be distractors as answers. Filters, each counted: spans of no known type,
fragments of longer names ("Tirzu" from "Im Tirzu") and common words ("Officer", "Yes") are no
candidates; the answer must not appear elsewhere in the question, four distinct options none inside
another, the question sentence must not occur in the training split. The report and the card give
answer-only baselines (``answer_only.py``: longest option, most frequent in the training split,
option-only unigram model), each expected near chance (0.25); the card shows 20 sampled questions. Answer
positions are balanced (the correct option cycles through the four slots). Quotas: an equal number of
questions per continent (default 800 in all, 200 per continent as in the reference benchmark),
spread round-robin over the continent's countries. Output: the published benchmark format (JSONL with
question, options, correct_answer, distractors, country, continent, generated_by) plus source fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from metacond import MetacondError

from . import geo
from .answer_only import answer_only_baselines
from .entities import EntityTyper, is_fragment, pieces
from .metadata import article_url  # stored as published; eval renders it in the training url_style

GENERATED_BY = "metacond-entity-cloze-v2"  # v2: typed distractors, fragments rejected
QUESTION_PREFIX = "Fill in the blank: "  # the benchmark's question template: QUESTION_PREFIX + sentence with BLANK
BLANK = "____"
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
_NAME = re.compile(r"\b([A-Z][a-z]{2,}(?:\s+(?:of\s+|de\s+)?[A-Z][a-z]{2,}){0,3})\b")


@dataclass
class MCQBuildConfig:
    test_file: str | None = field(default=None, metadata={"help": "Held-out articles (parquet or JSONL with text, country, continent), e.g. a news build's test split."})
    train_file: str | None = field(default=None, metadata={"help": "Training articles; questions whose sentence occurs there are dropped."})
    output: str = field(default="runs/localnews_mcq.jsonl", metadata={"help": "Where to write the questions (JSONL, published format)."})
    total: int = field(default=800, metadata={"help": "Questions in all, split equally across continents."})
    max_per_article: int = field(default=2, metadata={"help": "At most this many questions from one article."})
    min_sentence_chars: int = field(default=40, metadata={"help": "Shortest question sentence."})
    max_sentence_chars: int = field(default=300, metadata={"help": "Longest question sentence."})
    seed: int = field(default=0, metadata={"help": "Seed of distractor choice."})
    generator: str = field(default="cloze", metadata={"help": "cloze (no model needed) or llm (a local instruct model writes the questions)."})
    generator_model: str | None = field(default=None, metadata={"help": "With --generator llm: a local instruct model directory (transformers)."})
    max_new_tokens: int = field(default=160, metadata={"help": "With --generator llm: generation length per question."})
    llm_batch_size: int = field(default=8, metadata={"help": "With --generator llm: prompts per generate() call."})
    max_attempts: int | None = field(default=None, metadata={"help": "With --generator llm: at most this many articles prompted (default 2x total)."})
    dry_run: bool = field(default=False, metadata={"help": "Report what could be built; write nothing."})

    def __post_init__(self) -> None:
        if not self.test_file:
            raise MetacondError("--test_file is required")
        for f in (self.test_file, self.train_file):
            if f and not Path(f).is_file():
                raise MetacondError(f"article file {f!r} does not exist")
        if self.total < 4:
            raise MetacondError(f"total must be at least 4, got {self.total}")
        if self.generator not in ("cloze", "llm"):
            raise MetacondError(f"unknown generator {self.generator!r}; choose from cloze, llm")
        if self.generator == "llm" and not (self.generator_model and Path(self.generator_model).is_dir()):
            raise MetacondError("--generator llm needs --generator_model pointing to a local model directory")


def _read(path: str) -> list[dict[str, Any]]:
    p = Path(path)
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def stable_hash(*parts) -> int:
    """A seed-like integer from any parts, the same in every process (Python's hash() is salted)."""
    return int.from_bytes(hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


def normalize_text(s: str) -> str:
    """Lower case, single spaces: how questions and options are compared."""
    return " ".join(s.lower().split())


def candidates(article: dict[str, Any], cfg: MCQBuildConfig, typer: EntityTyper, removed: Counter | None = None) -> list[tuple[str, str, str]]:
    """(sentence, name, type) triples of an article; rejected spans are counted in ``removed`` by reason."""
    removed = Counter() if removed is None else removed
    out = []
    for sent in _SENT.split(article["text"].replace("\n", " ")):
        sent = sent.strip()
        if not cfg.min_sentence_chars <= len(sent) <= cfg.max_sentence_chars:
            continue
        for m in _NAME.finditer(sent):
            for start, end, after_title in pieces(sent, m.start(), m.end()):
                if start == 0:  # sentence-initial capitals say nothing about a name
                    continue
                name = sent[start:end]
                if is_fragment(sent, start, end, m.start(), m.end(), typer.lower):
                    removed["fragment_of_longer_name"] += 1
                    continue
                etype = typer.type_of(name, after_title)
                if etype is None:
                    removed["common_word" if typer.common_word(name) else "untyped_span"] += 1
                    continue
                out.append((sent, name, etype))
    return out


def build_mcq(cfg: MCQBuildConfig) -> dict[str, Any]:
    assert cfg.test_file is not None, "MCQBuildConfig.__post_init__ requires --test_file"
    arts = _read(cfg.test_file)
    missing = [k for k in ("text", "country", "continent") if arts and k not in arts[0]]
    if missing:
        raise MetacondError(f"{cfg.test_file} lacks column {missing[0]!r}")
    train_sents: set[str] = set()
    train_texts = [str(a.get("text", "")) for a in _read(cfg.train_file)] if cfg.train_file else []
    for text in train_texts:
        for s in _SENT.split(text.replace("\n", " ")):
            train_sents.add(normalize_text(s))
    if cfg.generator == "llm":
        from .mcq_llm import llm_questions

        by_key, n_cands, removed, generated_by = llm_questions(cfg, arts, train_sents)
        return finish(cfg, arts, by_key, n_cands, removed, generated_by, train_texts)
    by_key, n_cands, removed = cloze_questions(cfg, arts, train_sents, train_texts)
    return finish(cfg, arts, by_key, n_cands, removed, GENERATED_BY, train_texts)


def cloze_questions(cfg: MCQBuildConfig, arts: list[dict[str, Any]], train_sents: set[str], train_texts: Sequence[str] = ()):
    """Entity-cloze questions per (continent, country), in a seeded order; with the count of candidates and removals."""
    removed: Counter = Counter()
    typer = EntityTyper([a["text"] for a in arts if isinstance(a.get("text"), str)] + list(train_texts))
    cands: list[dict[str, Any]] = []
    for ai, a in enumerate(arts):
        if not isinstance(a.get("text"), str):
            removed["no_text"] += 1
            continue
        for sent, name, etype in candidates(a, cfg, typer, removed):
            cands.append({"article": ai, "sentence": sent, "name": name, "type": etype, "country": a["country"], "continent": a["continent"],
                          "url": article_url(a)})
    # Every occurrence of a typed name, sorted: drawing from it weights names by frequency, as answers are.
    pool: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for c in cands:
        pool[c["type"]].append((c["name"], c["country"]))
    for v in pool.values():
        v.sort()
    per_article: Counter = Counter()
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in sorted(cands, key=lambda c: stable_hash(cfg.seed, c["sentence"], c["name"])):
        if per_article[c["article"]] >= cfg.max_per_article:
            removed["article_quota"] += 1
            continue
        q = re.sub(rf"(?<![\w-]){re.escape(c['name'])}(?!\w)", BLANK, c["sentence"], count=1)
        if c["name"].lower() in q.lower():
            removed["answer_elsewhere_in_question"] += 1
            continue
        if normalize_text(c["sentence"]) in train_sents:
            removed["sentence_in_training_split"] += 1
            continue
        distractors = _distractors(pool[c["type"]], c, q, stable_hash(cfg.seed, q))
        if distractors is None:
            removed["too_few_distractors"] += 1
            continue
        per_article[c["article"]] += 1
        by_key[(c["continent"], c["country"])].append({**c, "question": QUESTION_PREFIX + q, "distractors": [d for d, _ in distractors],
                                                       "same_country_distractor": distractors[2][1] == c["country"]})
    return by_key, len(cands), removed


def _distractors(pool: list[tuple[str, str]], c: dict[str, Any], q: str, k: int, tries: int = 64) -> list[tuple[str, str]] | None:
    """Two names of the answer's type from other countries, then one from the answer's country (else a third other)."""
    taken = [c["name"].lower()]
    ql = q.lower()

    def ok(name: str) -> bool:
        low = name.lower()
        # Distinct, not in the question, and neither inside another option ("Buhari" / "Muhammadu Buhari").
        return low not in ql and all(low not in t and t not in low for t in taken)

    def draw(want_same: bool, salt: int) -> tuple[str, str] | None:
        for t in range(tries):
            name, country = pool[stable_hash(k, salt, t) % len(pool)]
            if (country == c["country"]) == want_same and ok(name) and (not want_same or name not in c["sentence"]):
                taken.append(name.lower())
                return name, country
        return None

    first, second = draw(False, 1), draw(False, 2)
    if first is None or second is None:
        return None
    third = draw(True, 3) or draw(False, 4)
    return None if third is None else [first, second, third]


def finish(cfg: MCQBuildConfig, arts, by_key: dict[tuple[str, str], list[dict[str, Any]]], n_cands: int, removed: Counter, generated_by: str,
           train_texts: list[str] | None = None) -> dict[str, Any]:
    """Balanced quotas, answer positions cycled, published format written with a report and a card."""
    made: list[dict[str, Any]] = []
    continents = sorted({k[0] for k in by_key})
    available = {cont: sum(len(v) for k, v in by_key.items() if k[0] == cont) for cont in continents}
    # Balanced: the same number per continent, shrunk to the smallest continent when data run short.
    quota = min([cfg.total // max(1, len(continents))] + list(available.values()))
    for cont in continents:
        queues = [by_key[k] for k in sorted(by_key) if k[0] == cont]
        picked = 0
        while picked < quota and any(queues):
            for qu in queues:
                if qu and picked < quota:
                    made.append(qu.pop(0))
                    picked += 1
        removed["over_quota"] += sum(len(qu) for qu in queues)
    rows = []
    for i, m in enumerate(made):
        opts = list(m["distractors"])
        opts.insert(i % 4, m["name"])  # the correct answer cycles through the four positions
        rows.append({"question": m["question"], "options": opts, "correct_answer": m["name"], "distractors": m["distractors"],
                     "country": geo.countries()[m["country"]].name, "continent": m["continent"], "generated_by": generated_by,
                     "country_code": m["country"], "url": m["url"], **({"answer_type": m["type"]} if "type" in m else {})})
    report = {"generator": generated_by, "articles": len(arts), "candidates": n_cands, "questions": len(rows), "quota_per_continent": quota,
              "per_continent": dict(Counter(r["continent"] for r in rows)), "per_country": dict(Counter(r["country_code"] for r in rows)),
              "removed": dict(removed), "answer_positions": dict(Counter(r["options"].index(r["correct_answer"]) for r in rows)),
              "answer_types": dict(Counter(r["answer_type"] for r in rows if "answer_type" in r)),
              "same_country_distractor": sum(bool(m.get("same_country_distractor")) for m in made),
              # Accuracy from the options alone (chance 0.25); a set that is fair to the question keeps each near chance.
              "answer_only_baselines": answer_only_baselines(rows, train_texts)}
    if not cfg.dry_run:
        out = Path(cfg.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        out.with_suffix(".report.json").write_text(json.dumps(report, indent=1))
        out.with_suffix(".md").write_text(_card(cfg, report, generated_by, rows))
    return report


CARD_SAMPLE = 20  # questions shown in the card, a seeded sample


def _card(cfg: MCQBuildConfig, report: dict[str, Any], generated_by: str, rows: list[dict[str, Any]]) -> str:
    per = "\n".join(f"| {k} | {v} |" for k, v in sorted(report["per_country"].items()))
    base = "\n".join(f"| {k} | {'n/a (no --train_file)' if v is None else f'{v:.3f}'} |" for k, v in report["answer_only_baselines"].items())
    shown = sorted(rows, key=lambda r: stable_hash(cfg.seed, "card", r["question"]))[:CARD_SAMPLE]
    sample = "\n".join(f"| {i + 1} | {_cell(r['question'])} | {' / '.join(f'**{_cell(o)}**' if o == r['correct_answer'] else _cell(o) for o in r['options'])} "
                       f"| {r.get('answer_type', '')} | {r['country']} |" for i, r in enumerate(shown))
    rem = "\n".join(f"| {k} | {v} |" for k, v in sorted(report["removed"].items(), key=lambda kv: -kv[1]))
    return f"""---
tags: [multiple-choice, news, localization, metacond]
language: [en]
---

# Localized news MCQ ({generated_by})

{report['questions']} questions from {report['articles']} held-out articles (`{cfg.test_file}`), {report['quota_per_continent']} per continent at most.
{"Each question blanks a typed name (person, place, organization, facility, nationality) in a news sentence; distractors are names of the same type from two other countries' articles and one from the same country." if generated_by == GENERATED_BY else f"Questions written by the local instruct model `{cfg.generator_model}` from one article each (prompt in metacond.data_builders.news.mcq_llm), then filtered."}
Published benchmark format; answer positions are balanced ({report['answer_positions']}).

| country | questions |
|---|---|
{per}

| filtered out | count |
|---|---|
{rem}

## Answer-only baselines

Accuracy from the options alone, without the question (chance 0.25; ties count 1/k): the longest
option, the option written most often in the training split, and a naive-Bayes unigram model of option
words fit on the other folds (metacond.data_builders.news.answer_only).

| baseline | accuracy |
|---|---|
{base}

Answer types: {report['answer_types']}.

## {len(shown)} sampled questions (answer in bold)

| # | question | options | type | country |
|---|---|---|---|---|
{sample}
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
