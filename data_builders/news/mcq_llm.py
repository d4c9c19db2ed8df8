"""Optional question writer: a local instruct model (transformers) turns held-out articles into MCQs.

For users who have such a model on disk; nothing is downloaded. Each article (visited round-robin
over countries, so quotas fill evenly) gets the prompt below, wrapped in the model's chat template
when it has one, and a greedy answer. The reply must contain one JSON object with ``question``,
``correct_answer`` and three ``distractors``; everything else is counted and dropped under a reason
(unparseable reply, answer in the question, options not distinct, question in the training split).
Accepted questions then go through the same balanced quotas and answer-position cycling as the
entity-cloze builder.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

PROMPT = """You write quiz questions about local news from {country}.

Article:
{article}

Write one multiple-choice question about a specific fact in this article that a regular reader of {country}'s news could answer without seeing the article. Give the correct answer and three plausible but wrong answers of the same kind. Reply with JSON only, in this form:
{{"question": "...", "correct_answer": "...", "distractors": ["...", "...", "..."]}}"""

ARTICLE_CHARS = 1500


def render_prompt(tokenizer, article: dict[str, Any], country_name: str) -> str:
    text = " ".join(str(article["text"]).split())[:ARTICLE_CHARS]
    msg = PROMPT.format(country=country_name, article=text)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": msg}], tokenize=False, add_generation_prompt=True)
    return msg + "\n"


def parse_generation(reply: str) -> tuple[dict[str, Any] | None, str | None]:
    """(question dict, None) or (None, reason): the first JSON object in the reply that has a ``question``."""
    dec = json.JSONDecoder()
    reply = reply or ""
    for m in re.finditer(r"\{", reply):
        try:
            obj, _ = dec.raw_decode(reply, m.start())
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or "question" not in obj:
            continue
        q, a, d = obj.get("question"), obj.get("correct_answer"), obj.get("distractors")
        if not (isinstance(q, str) and q.strip() and isinstance(a, str) and a.strip() and isinstance(d, list) and len(d) == 3
                and all(isinstance(x, str) and x.strip() for x in d)):
            return None, "malformed_fields"
        a, d = a.strip(), [x.strip() for x in d]
        if len({x.lower() for x in [a, *d]}) < 4:
            return None, "options_not_distinct"
        if a.lower() in q.lower():
            return None, "answer_elsewhere_in_question"
        return {"question": q.strip(), "name": a, "distractors": d}, None
    return None, "unparseable_generation"


def llm_questions(cfg, arts: list[dict[str, Any]], train_sents: set[str]):
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from metacond import MetacondError

    from . import geo
    from .mcq import normalize_text, stable_hash
    from .metadata import article_url  # stored as published; eval renders it in the training url_style

    p = Path(cfg.generator_model)
    try:
        tok = AutoTokenizer.from_pretrained(p)
        model = AutoModelForCausalLM.from_pretrained(p).eval()
    except (OSError, ValueError) as e:
        raise MetacondError(f"could not load the generator model at {p}: {str(e).splitlines()[0]}") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    queues: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(arts):
        if isinstance(a.get("text"), str) and a["text"].strip():
            queues[a["country"]].append(i)
    for c in queues:
        queues[c].sort(key=lambda i: stable_hash(cfg.seed, i))
    order: list[int] = []
    while any(queues.values()):
        for c in sorted(queues):
            if queues[c]:
                order.append(queues[c].pop(0))
    order = order[: cfg.max_attempts or 2 * cfg.total]
    removed: Counter = Counter()
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    names = geo.countries()
    for start in tqdm(range(0, len(order), cfg.llm_batch_size), desc="writing questions", unit="batch"):
        idx = order[start:start + cfg.llm_batch_size]
        prompts = [render_prompt(tok, arts[i], names[arts[i]["country"]].name if arts[i]["country"] in names else arts[i]["country"]) for i in idx]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=not getattr(tok, "chat_template", None))
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=cfg.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        for i, row in zip(idx, out[:, enc["input_ids"].shape[1]:]):
            q, why = parse_generation(tok.decode(row, skip_special_tokens=True))
            if q is None:
                removed[why] += 1
                continue
            if normalize_text(q["question"]) in train_sents:
                removed["sentence_in_training_split"] += 1
                continue
            a = arts[i]
            by_key[(a["continent"], a["country"])].append({**q, "article": i, "country": a["country"], "continent": a["continent"],
                                                           "url": article_url(a)})
    return by_key, len(order), removed, f"metacond-llm:{p.name}"
