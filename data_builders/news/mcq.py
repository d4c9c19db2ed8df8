"""A localized news multiple-choice benchmark built without an LLM: entity cloze.

From held-out articles, a sentence with a capitalized name (not its first word) becomes the question
with the name blanked; the answer is that name; distractors are names of the same kind — two from
other countries' articles and one from another article of the same country — so only knowledge of
local news separates them. Filters, each counted: the answer must not appear elsewhere in the
question, four distinct options, the question sentence must not occur in the training split. Answer
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
from typing import Any

from metacond import MetacondError

from . import geo

GENERATED_BY = "metacond-entity-cloze-v1"
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
_NAME = re.compile(r"\b([A-Z][a-z]{2,}(?:\s+(?:of\s+|de\s+)?[A-Z][a-z]{2,}){0,3})\b")
STOP = set("The This That These Those There Their They Then When Where While What Which Who Why How His Her Its Our Your We He She It "
           "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August September October "
           "November December Mr Mrs Ms Dr But And Also However After Before During Since Under Over According In On At For From With".split())


@dataclass
class MCQBuildConfig:
    test_file: str = field(default=None, metadata={"help": "Held-out articles (parquet or JSONL with text, country, continent), e.g. a news build's test split."})
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


def _h(*parts) -> int:
    return int.from_bytes(hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def candidates(article: dict[str, Any], cfg: MCQBuildConfig) -> list[tuple[str, str]]:
    """(sentence, name) pairs of an article."""
    out = []
    for sent in _SENT.split(article["text"].replace("\n", " ")):
        sent = sent.strip()
        if not cfg.min_sentence_chars <= len(sent) <= cfg.max_sentence_chars:
            continue
        first = sent.split(" ", 1)[0]
        for m in _NAME.finditer(sent):
            name = m.group(1)
            if m.start() == 0 or name in STOP or name.split()[0] in STOP or name == first:
                continue
            out.append((sent, name))
    return out


def build_mcq(cfg: MCQBuildConfig) -> dict[str, Any]:
    arts = _read(cfg.test_file)
    missing = [k for k in ("text", "country", "continent") if arts and k not in arts[0]]
    if missing:
        raise MetacondError(f"{cfg.test_file} lacks column {missing[0]!r}")
    train_sents: set[str] = set()
    if cfg.train_file:
        for a in _read(cfg.train_file):
            for s in _SENT.split(str(a.get("text", "")).replace("\n", " ")):
                train_sents.add(_norm(s))
    if cfg.generator == "llm":
        from .mcq_llm import llm_questions

        by_key, n_cands, removed, generated_by = llm_questions(cfg, arts, train_sents)
        return finish(cfg, arts, by_key, n_cands, removed, generated_by)
    by_key, n_cands, removed = cloze_questions(cfg, arts, train_sents)
    return finish(cfg, arts, by_key, n_cands, removed, GENERATED_BY)


def cloze_questions(cfg: MCQBuildConfig, arts: list[dict[str, Any]], train_sents: set[str]):
    """Entity-cloze questions per (continent, country), in a seeded order; with the count of candidates and removals."""
    removed: Counter = Counter()
    names_by_country: dict[str, set[str]] = defaultdict(set)
    cands: list[dict[str, Any]] = []
    for ai, a in enumerate(arts):
        if not isinstance(a.get("text"), str):
            removed["no_text"] += 1
            continue
        for sent, name in candidates(a, cfg):
            names_by_country[a["country"]].add(name)
            cands.append({"article": ai, "sentence": sent, "name": name, "country": a["country"], "continent": a["continent"],
                          "url": a.get("url") or a.get("short_url")})
    countries = sorted(names_by_country)
    per_article: Counter = Counter()
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in sorted(cands, key=lambda c: _h(cfg.seed, c["sentence"], c["name"])):
        if per_article[c["article"]] >= cfg.max_per_article:
            removed["article_quota"] += 1
            continue
        q = c["sentence"].replace(c["name"], "____", 1)
        if c["name"].lower() in q.lower():
            removed["answer_elsewhere_in_question"] += 1
            continue
        if _norm(c["sentence"]) in train_sents:
            removed["sentence_in_training_split"] += 1
            continue
        others = sorted(n for oc in countries if oc != c["country"] for n in names_by_country[oc]
                        if n.lower() not in q.lower() and n != c["name"])
        same = sorted(n for n in names_by_country[c["country"]] if n != c["name"] and n.lower() not in q.lower()
                      and n not in c["sentence"])
        if len(others) < 2 or not same:
            removed["too_few_distractors"] += 1
            continue
        k = _h(cfg.seed, q)
        distractors = [others[k % len(others)], others[(k // 7 + 1) % len(others)], same[(k // 13) % len(same)]]
        if len({c["name"], *distractors}) < 4:
            removed["options_not_distinct"] += 1
            continue
        per_article[c["article"]] += 1
        by_key[(c["continent"], c["country"])].append({**c, "question": f"Fill in the blank: {q}", "distractors": distractors})
    return by_key, len(cands), removed


def finish(cfg: MCQBuildConfig, arts, by_key: dict[tuple[str, str], list[dict[str, Any]]], n_cands: int, removed: Counter, generated_by: str) -> dict[str, Any]:
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
                     "country_code": m["country"], "url": m["url"]})
    report = {"generator": generated_by, "articles": len(arts), "candidates": n_cands, "questions": len(rows), "quota_per_continent": quota,
              "per_continent": dict(Counter(r["continent"] for r in rows)), "per_country": dict(Counter(r["country_code"] for r in rows)),
              "removed": dict(removed), "answer_positions": dict(Counter(r["options"].index(r["correct_answer"]) for r in rows))}
    if not cfg.dry_run:
        out = Path(cfg.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        out.with_suffix(".report.json").write_text(json.dumps(report, indent=1))
        out.with_suffix(".md").write_text(_card(cfg, report, generated_by))
    return report


def _card(cfg: MCQBuildConfig, report: dict[str, Any], generated_by: str) -> str:
    per = "\n".join(f"| {k} | {v} |" for k, v in sorted(report["per_country"].items()))
    rem = "\n".join(f"| {k} | {v} |" for k, v in sorted(report["removed"].items(), key=lambda kv: -kv[1]))
    return f"""---
tags: [multiple-choice, news, localization, metacond]
language: [en]
---

# Localized news MCQ ({generated_by})

{report['questions']} questions from {report['articles']} held-out articles (`{cfg.test_file}`), {report['quota_per_continent']} per continent at most.
{"Each question blanks a name in a news sentence; distractors are names from two other countries' articles and one from the same country." if generated_by == GENERATED_BY else f"Questions written by the local instruct model `{cfg.generator_model}` from one article each (prompt in metacond.data_builders.news.mcq_llm), then filtered."}
Published benchmark format; answer positions are balanced ({report['answer_positions']}).

| country | questions |
|---|---|
{per}

| filtered out | count |
|---|---|
{rem}
"""
