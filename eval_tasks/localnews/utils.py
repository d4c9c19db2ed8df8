"""Helpers of the localnews task families (``mcq``, ``letter``, ``gen``, ``official``, ``ppl``).

Rows use the published benchmark format (JSONL: question, options, correct_answer, distractors,
country as a full English name, continent in lower case, generated_by); rows from metacond's
builder add ``url`` (the article's URL as published). A row's metadata — URL, country code,
continent — comes from ``metacond.data_builders.news.metadata``, the renderer pretraining uses, in the
task's ``url_style``; the continent is derived from the country, so the gold release's
'North America' rows (Jamaica, Canada) load as ``america``. Without a URL, the ``url`` and ``full``
conditions use the first outlet listed for the row's country in metacond's outlet table. Bad rows are
reported with their line number and skipped (or fail the run with strict: true).

Every question is asked under each cyclic rotation of its options (``scoring.rotate``); docs carry
``qid`` and ``order`` so accuracy can be averaged per question and a position-bias table built.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from pathlib import Path

from metacond.data_builders.news import geo
from metacond.data_builders.news.metadata import country_of, metadata_block
from metacond.eval_tasks.localnews.conditions import CONTINENTS  # absolute: lm-eval loads this file as a standalone module
from metacond.eval_tasks.localnews.scoring import rotate, rotated_gold

log = logging.getLogger("metacond.localnews")


def continent_of_row(row) -> str | None:
    code = country_of(row)
    return None if code is None else geo.continent_of(code)
REQUIRED = ("question", "options", "correct_answer", "country")
LETTERS = "ABCDEFGHIJ"
INSTRUCTION = "Answer with the correct option."


def validate_row(row, lineno: int):
    """(clean row, None) or (None, reason). The clean row has ``country_code``, the derived ``continent`` and ``line``."""
    from metacond.data_builders.news import geo, metadata

    missing = [k for k in REQUIRED if k not in row or row[k] in (None, "")]
    if missing:
        return None, f"line {lineno}: missing field {missing[0]!r}"
    opts = row["options"]
    if not isinstance(opts, list) or not 2 <= len(opts) <= len(LETTERS) or not all(isinstance(o, str) and o for o in opts):
        return None, f"line {lineno}: needs 2 to {len(LETTERS)} non-empty string options"
    if row["correct_answer"] not in opts:
        return None, f"line {lineno}: correct_answer is not among the options"
    code = metadata.country_of(row)
    if code is None:
        return None, f"line {lineno}: unknown country {row['country']!r}"
    cont = geo.continent_of(code)
    if cont not in CONTINENTS:
        return None, f"line {lineno}: {row['country']!r} is in {cont}, outside the study's continents ({', '.join(CONTINENTS)})"
    # The given continent is only a label (the gold release says 'North America' for Jamaica): the country decides.
    return {**row, "continent": cont, "continent_given": row.get("continent"), "country_code": code, "line": lineno}, None


def _records(path: str | Path):
    """(row number, record or None for an unparsable JSON line) of a JSONL, JSON (a list) or parquet file."""
    p = Path(path)
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        for i, r in enumerate(pq.read_table(p).to_pylist(), 1):
            yield i, r
        return
    if p.suffix == ".json" and p.read_text(encoding="utf-8", errors="replace").lstrip().startswith("["):
        for i, r in enumerate(json.loads(p.read_text(encoding="utf-8")), 1):
            yield i, r
        return
    with open(p, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError:
                yield lineno, None


def load_questions(path: str | Path, strict: bool = False):
    """Questions of a JSONL, JSON-list or parquet file (the published gold release is parquet); bad rows are
    reported with their line (row) number and skipped, or fail the run with ``strict``."""
    rows, problems = [], []
    for lineno, raw in _records(path):
        if raw is None:
            problems.append(f"line {lineno}: not valid JSON")
            continue
        if isinstance(raw, dict) and hasattr(raw.get("options"), "tolist"):
            raw = {**raw, "options": raw["options"].tolist()}
        row, why = validate_row(raw, lineno) if isinstance(raw, dict) else (None, f"line {lineno}: not a JSON object")
        if row is None:
            problems.append(why)
        else:
            rows.append(row)
    if problems:
        msg = f"{path}: skipped {len(problems)} bad row(s): " + "; ".join(problems[:5]) + (" …" if len(problems) > 5 else "")
        if strict:
            raise ValueError(msg)
        log.warning(msg)
    return rows, problems


# ---------------------------------------------------------------------------------------------- prompts
def context_for(row, condition: str, url_style: str = "host") -> str:
    """``mcq`` family: metadata block and question; the options are scored as continuations and never shown."""
    return f"{metadata_block(row, condition, url_style)}Question: {row['question']}\nAnswer:"


def gen_prompt(row, condition: str, url_style: str = "host", options=None) -> str:
    """``gen`` family: metadata block, question, lettered options (in the given order), instruction."""
    options = row["options"] if options is None else options
    opts = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
    return f"{metadata_block(row, condition, url_style)}Question: {row['question']}\n{opts}\n{INSTRUCTION}"


def letter_prompt(row, condition: str, url_style: str = "host", options=None) -> str:
    """``letter`` family: the generative prompt plus an answer cue; the letters are scored."""
    return gen_prompt(row, condition, url_style, options) + "\nAnswer:"


# The reference work's evaluation prompt (its ``legacy_code`` metadata style, ``question`` layout, no answer
# cue): a synthetic block naming a fact-checking site per country code, "CONTENT:" alone without metadata.
OFFICIAL_BASE_URL = "www.globalfactcheck.org"


def official_prompt(row, condition: str, options=None) -> str:
    options = row["options"] if options is None else options
    opts = "\n".join(f"{LETTERS[i]}: {o}" for i, o in enumerate(options))
    body = f"CONTENT:\nQuestion: {row['question'].strip()}\n\nOptions:\n{opts}\n\n{INSTRUCTION}"
    if condition == "none":
        return body
    # The reference prints the row's own continent label, title-cased ('North America' for Jamaica), else the country's.
    cc, cont = row["country_code"], str(row.get("continent_given") or row["continent"]).strip().title()
    return f"URL: {OFFICIAL_BASE_URL}/{cc}\nCOUNTRY: {cc}\nCONTINENT: {cont}\n\nTITLE: Facts about the country {cc}\n\n{body}"


# ---------------------------------------------------------------------------------------------- documents
# The reference's system prompt (its chat path wraps the official prompt with it).
REFERENCE_SYSTEM_PROMPT = ("Below is an instruction that describes a task. "
                           "Write a response that appropriately completes the request.")


def _data_file(task: str, data_file, hint: str) -> Path:
    if not data_file:
        raise ValueError(f"{task} needs its data file: --metadata '{{\"data_file\": \"{hint}\"}}'")
    if not Path(data_file).is_file():
        raise FileNotFoundError(f"{task} data file {data_file!r} does not exist")
    return Path(data_file)


def _of_continent(rows, continent: str | None, meta, key=lambda row: row["continent"]):
    """The rows of ``continent`` (every study continent when None), at most ``per_continent_limit`` of each: the first of
    each continent in file order, so a quick run still sees every continent (lm-eval's --limit takes the file's first)."""
    n = meta.get("per_continent_limit")
    cap = int(n) if n not in (None, "", 0) else None
    taken: Counter = Counter()
    for item in rows:
        c = key(item)
        if c not in CONTINENTS or (continent and c != continent) or (cap is not None and taken[c] >= cap):
            continue
        taken[c] += 1
        yield item


def _question_docs(family: str, condition: str, data_file, continent, strict, rotate_options, url_style, meta) -> dict:
    """{"test": Dataset}: one doc per valid question of ``continent`` (all continents when None) with the prompts and
    continuations of every option order (``questions.py`` turns them into requests and averages over the orders)."""
    import datasets

    from metacond.eval_tasks.localnews import defaults

    task = f"localnews_{family}_{condition}" + (f"_{continent}" if continent else "")
    _data_file(task, data_file, "questions.jsonl")
    if family != "official":
        url_style = defaults.url_style({**meta, "url_style": url_style})
    model = defaults.model_of(meta) or meta.get("tokenizer")
    tok = defaults.tokenizer(model) if model and family in ("mcq", "official") else None
    rows, _ = load_questions(data_file, strict=bool(strict))
    docs = []
    for r in _of_continent(rows, continent, meta):
        opts, n = r["options"], len(r["options"])
        orders = list(range(n)) if rotate_options else [0]
        rotated = [rotate(opts, k) for k in orders]
        if family == "mcq":  # the options are not shown: one prompt serves every order
            prompts, conts = [context_for(r, condition, url_style)], [[" " + o for o in opts]]
        elif family == "letter":
            prompts = [letter_prompt(r, condition, url_style, o) for o in rotated]
            conts = [[" " + x for x in LETTERS[:n]] for _ in rotated]
        elif family == "official":
            prompts = [official_prompt(r, condition, o) for o in rotated]
            conts = [[" " + x.strip() for x in o] for o in rotated]
        else:
            prompts, conts = [gen_prompt(r, condition, url_style, o) for o in rotated], [[] for _ in rotated]
        scored = [" " + (o.strip() if family == "official" else o) for o in opts]
        docs.append({"family": family, "qid": r["line"], "country": r["country_code"], "continent": r["continent"],
                     "continent_given": str(r.get("continent_given") or ""), "options": opts, "gold_in_file": opts.index(r["correct_answer"]),
                     "gold": rotated_gold(opts.index(r["correct_answer"]), orders[0], n), "orders": orders, "prompts": prompts,
                     "continuations": conts, "shared_prompt": family == "mcq",
                     "suffix": "\n" if family == "official" else "",  # the reference renders its prompt as ``user.rstrip() + "\n"``
                     "system": REFERENCE_SYSTEM_PROMPT if family == "official" else "",
                     "ntok": [len(tok(s, add_special_tokens=False)["input_ids"]) for s in scored] if tok is not None else []})
    if not docs:
        where = f"from {continent} " if continent else ""
        raise ValueError(f"{task}: {data_file} has no valid questions {where}(run localnews_{family}_{condition}, which takes the continents the file has)")
    return {"test": datasets.Dataset.from_list(docs)}


def load_mcq(data_file=None, condition="none", continent=None, strict=False, url_style=None, rotate_options=True, **meta):
    return _question_docs("mcq", condition, data_file, continent, strict, rotate_options, url_style, meta)


def load_letter(data_file=None, condition="none", continent=None, strict=False, url_style=None, rotate_options=True, **meta):
    return _question_docs("letter", condition, data_file, continent, strict, rotate_options, url_style, meta)


def load_gen(data_file=None, condition="none", continent=None, strict=False, url_style=None, rotate_options=True, **meta):
    return _question_docs("gen", condition, data_file, continent, strict, rotate_options, url_style, meta)


def load_official(data_file=None, condition="none", continent=None, strict=False, rotate_options=True, **meta):
    from metacond.eval_tasks.localnews import defaults

    if meta.get("add_bos_token") not in (False, "False", "false") and defaults.model_adds_bos(meta):
        log.warning("localnews_official: the reference scores without a BOS token; pass add_bos_token=False in --model_args "
                    "to match it token for token")
    return _question_docs("official", condition, data_file, continent, strict, rotate_options, None, meta)


def doc_to_text(doc) -> str:
    return doc["prompts"][0] + doc["suffix"]


def doc_to_choice(doc):
    return [c.strip() for c in doc["continuations"][0]]


def doc_to_target(doc) -> int:
    return doc["gold"]


# ---------------------------------------------------------------------------------------------- generative MCQ
def gen_doc_to_target(doc) -> str:
    return LETTERS[doc["gold"]]


def parse_answer(response: str, choices) -> int | None:
    """The chosen option's index, or None (unparsed).

    In order: a leading letter ("B", "B.", "(B) ...", "B) ..."); "answer is B" / "Answer: B"; else the
    one option whose text appears in the response (case-insensitive; the longest wins when one
    option's text contains another's). Anything else is unparsed.
    """
    import re

    letters = LETTERS[: len(choices)]
    text = (response or "").strip()
    m = re.match(rf"^\(?([{letters}])(?:[\s.):,]|$)", text)
    if m:
        return letters.index(m.group(1))
    m = re.search(rf"answer(?:\s+is)?\s*[:\-]?\s*\(?([{letters}])\b", text, flags=re.IGNORECASE)
    if m and m.group(1).upper() in letters:
        return letters.index(m.group(1).upper())
    low = text.lower()
    hits = [i for i, c in enumerate(choices) if c and c.lower() in low]
    hits = [i for i in hits if not any(j != i and choices[i].lower() in choices[j].lower() for j in hits)]
    return hits[0] if len(hits) == 1 else None


def ratio_of_sums(items) -> float:
    """Aggregation of ``acc_exclude``: correct answers over parsed answers."""
    parsed = sum(p for _, p in items)
    return sum(c for c, _ in items) / parsed if parsed else float("nan")


# ---------------------------------------------------------------------------------------------- regional perplexity
def _truncate_bytes(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut at the last whitespace: a byte-level BPE never makes more tokens than bytes."""
    b = text.encode("utf-8")
    if len(b) <= limit:
        return text
    cut = b[:limit].decode("utf-8", errors="ignore")
    return cut[: cut.rfind(" ")] if " " in cut else cut


TOKEN_COLUMNS = ("input_ids", "labels", "attention_mask", "meta_spans", "position_ids", "document")


@functools.lru_cache(maxsize=4)
def _read_articles(path: str, mtime: float) -> tuple[dict, ...]:
    """The article fields only (a news build's parquet also holds token ids), read once for all subtasks of a run."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        cols = [c for c in pq.read_schema(path).names if c not in TOKEN_COLUMNS]  # any declared metadata column comes along
        return tuple(pq.read_table(path, columns=cols).to_pylist())
    return tuple(json.loads(line) for line in Path(path).read_text().splitlines() if line.strip())


def load_articles(data_file=None, condition="none", continent=None, max_body_bytes=None, url_style=None, **meta):
    """Held-out articles (JSONL or parquet with url, country, continent, title, text; e.g. a news build's
    ``<experiment>/<template>/parquet/test.parquet``), each split into a metadata context and a body.

    Bodies longer than the byte budget are cut at a word boundary — the harness cannot score a continuation
    longer than the model's context — and the score is normalized by the bytes actually scored. The budget and
    the URL style default to what ``metacond eval`` uses for the same model (``defaults.py``: the context length
    and the training build, read from ``pretrained``), so both give the same numbers."""
    import datasets

    from metacond.eval_tasks.localnews import defaults

    task = f"localnews_ppl_{condition}" + (f"_{continent}" if continent else "")
    p = _data_file(task, data_file, "test.parquet")
    budget = defaults.max_body_bytes({**meta, "max_body_bytes": max_body_bytes})
    url_style = defaults.url_style({**meta, "url_style": url_style})
    template = defaults.trained_template(meta) if condition == defaults.TRAINED else condition
    docs = []
    # The continent comes from the country (one mapping, geo.continent_of), not from a row's own label.
    rows = ((i, {**r, "continent": continent_of_row(r)}) for i, r in enumerate(_read_articles(str(p.resolve()), p.stat().st_mtime)))
    for row_index, r in _of_continent(rows, continent, meta, key=lambda item: item[1]["continent"]):
        ctx, cont, article = split_article(r, template, url_style)
        n_bytes = len(article.encode("utf-8"))
        if budget and n_bytes > budget:  # 0: no cut
            overhead = n_bytes - len(r["text"].encode("utf-8"))  # the TITLE/CONTENT lines around the text
            ctx, cont, article = split_article({**r, "text": _truncate_bytes(r["text"], max(1, budget - overhead))}, template, url_style)
        # The row's place in the file names the article, so two models' scores pair article by article.
        docs.append({"context": ctx, "body": cont, "country": r["country"], "continent": r["continent"], "body_bytes": len(article.encode("utf-8")),
                     "article": row_index})
    if not docs:
        where = f"from {continent} " if continent else ""
        raise ValueError(f"{task}: {data_file} has no articles {where}(run localnews_ppl_{condition}, which takes the continents the file has)")
    return {"test": datasets.Dataset.from_list(docs)}


def split_article(r, condition, url_style: str = "host") -> tuple[str, str, str]:
    """(context, scored continuation, the scored text: the same string as the continuation).

    The document is rendered exactly as pretraining renders it (``metadata.render_document``). The
    context is the whole metadata block *and* the article's leading marker (``TITLE:`` or
    ``CONTENT:``); the continuation is the rest of the article. Pretraining masks the block with its
    closing blank line, so a model never learns to predict that separator: scoring it (as the
    harness would if the context ended at the block, lm-eval moving trailing whitespace into the
    continuation) charged every metadata condition for tokens the model was never trained on,
    0.04-0.1 bits/byte against metadata on the reference models. With the marker in the context every
    condition scores the same article bytes, token for token, and the context ends in a non-space.
    """
    import re

    from metacond.data_builders.news.metadata import render_document

    doc, _, end = render_document(r, condition, url_style)
    lead = re.match(r"\s*\S+", doc[end:])
    cut = end + (lead.end() if lead else 0)
    if not doc[cut:].strip():  # an article of one word: score it whole after the block
        cut = len(doc[:end].rstrip())
    return doc[:cut], doc[cut:], doc[cut:]


def ppl_context(doc) -> str:
    return doc["context"]


def ppl_target(doc) -> str:
    return doc["body"]


def ppl_results(doc, results):
    ll, _ = results[0]
    return {"bits_per_byte": (ll, doc["body_bytes"]), "byte_perplexity": (ll, doc["body_bytes"]), "nll_sum": ll}
