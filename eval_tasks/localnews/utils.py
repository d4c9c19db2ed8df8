"""Helpers of the localnews_mcq tasks.

Rows use the published benchmark format (JSONL: question, options, correct_answer, distractors,
country as a full English name, continent in lower case, generated_by); rows from metacond's
builder may add `url`. The task's metadata condition (`none`, `country`, `continent`, `url`, `full`)
lives in the task config and is rendered with the same template as pretraining. Without a URL, the
`url` and `full` conditions use the first outlet listed for the row's country in metacond's outlet
table. Bad rows are reported with their line number and skipped (or fail the run with strict: true).
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

log = logging.getLogger("metacond.localnews")
CONTINENTS = ("africa", "america", "asia", "europe")
REQUIRED = ("question", "options", "correct_answer", "country", "continent")


@functools.lru_cache(maxsize=1)
def _outlet_for_country() -> dict[str, str]:
    """The first outlet listed for each country in metacond's outlet table."""
    from metacond.data_builders.news import geo

    first: dict[str, str] = {}
    for domain, country in geo.outlets().items():
        first.setdefault(country, domain)
    return first


def validate_row(row, lineno: int):
    """(clean row, None) or (None, reason)."""
    from metacond.data_builders.news import geo

    missing = [k for k in REQUIRED if k not in row or row[k] in (None, "")]
    if missing:
        return None, f"line {lineno}: missing field {missing[0]!r}"
    opts = row["options"]
    if not isinstance(opts, list) or len(opts) < 2 or not all(isinstance(o, str) and o for o in opts):
        return None, f"line {lineno}: needs at least 2 non-empty string options"
    if row["correct_answer"] not in opts:
        return None, f"line {lineno}: correct_answer is not among the options"
    cont = str(row["continent"]).lower()
    if cont not in CONTINENTS:
        return None, f"line {lineno}: unknown continent {row['continent']!r}"
    code = geo.country_code(str(row["country"]))
    if code is None:
        return None, f"line {lineno}: unknown country {row['country']!r}"
    return {**row, "continent": cont, "country_code": code}, None


def load_questions(path: str | Path, strict: bool = False):
    rows, problems = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError:
                problems.append(f"line {lineno}: not valid JSON")
                continue
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


def metadata_block(row, condition: str) -> str:
    """The pretraining template's metadata block (with its closing blank line) for a question's row; "" for none."""
    from metacond.data_builders.news.templates import Template

    url = row.get("url") or _outlet_for_country().get(row["country_code"], "")
    return Template(condition).block({"url": url, "country": row["country_code"], "continent": row["continent"]})


def context_for(row, condition: str) -> str:
    return f"{metadata_block(row, condition)}Question: {row['question']}\nAnswer:"


def _question_docs(task: str, column: str, make_text, data_file, continent, strict) -> dict:
    """{"test": Dataset} of the valid questions (of one continent) in ``data_file``; ``column`` holds ``make_text(row)``."""
    import datasets

    if not data_file:
        raise ValueError(f"{task} needs its data file: --metadata '{{\"data_file\": \"questions.jsonl\"}}'")
    if not Path(data_file).is_file():
        raise FileNotFoundError(f"{task} data file {data_file!r} does not exist")
    rows, _ = load_questions(data_file, strict=bool(strict))
    docs = [{column: make_text(r), "choices": list(r["options"]), "gold": r["options"].index(r["correct_answer"]), "country": r["country_code"],
             "continent": r["continent"]} for r in rows if not continent or r["continent"] == continent]
    if docs:
        return {"test": datasets.Dataset.from_list(docs)}
    return {"test": datasets.Dataset.from_dict({k: [] for k in (column, "choices", "gold", "country", "continent")})}


def load_mcq(data_file=None, condition="none", continent=None, strict=False, **kwargs):
    return _question_docs("localnews_mcq", "context", lambda r: context_for(r, condition), data_file, continent, strict)


def doc_to_text(doc) -> str:
    return doc["context"]


def doc_to_choice(doc):
    return doc["choices"]


def doc_to_target(doc) -> int:
    return doc["gold"]


# ---------------------------------------------------------------------------------------------- generative MCQ
LETTERS = "ABCDEFGHIJ"
INSTRUCTION = "Answer with the correct option."


def gen_prompt(row, condition: str) -> str:
    """Metadata block, question, lettered options (data order), instruction: the user turn under a chat template."""
    opts = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(row["options"]))
    return f"{metadata_block(row, condition)}Question: {row['question']}\n{opts}\n{INSTRUCTION}"


def load_gen(data_file=None, condition="none", continent=None, strict=False, **kwargs):
    return _question_docs("localnews_gen", "prompt", lambda r: gen_prompt(r, condition), data_file, continent, strict)


def gen_doc_to_text(doc) -> str:
    return doc["prompt"]


def gen_doc_to_target(doc) -> str:
    return LETTERS[doc["gold"]]


def parse_answer(response: str, choices) -> int | None:
    """The chosen option's index, or None (counted wrong).

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


def gen_results(doc, results):
    idx = parse_answer(results[0], doc["choices"])
    return {"acc": float(idx == doc["gold"]), "parsed": float(idx is not None)}


# ---------------------------------------------------------------------------------------------- regional perplexity
def _truncate_bytes(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut at the last whitespace: a byte-level BPE never makes more tokens than bytes."""
    b = text.encode("utf-8")
    if len(b) <= limit:
        return text
    cut = b[:limit].decode("utf-8", errors="ignore")
    return cut[: cut.rfind(" ")] if " " in cut else cut


@functools.lru_cache(maxsize=4)
def _read_articles(path: str, mtime: float) -> tuple[dict, ...]:
    """The article fields only (a news build's parquet also holds token ids), read once for all subtasks of a run."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        have = set(pq.read_schema(path).names)
        cols = [c for c in ("url", "short_url", "country", "continent", "title", "text") if c in have]
        return tuple(pq.read_table(path, columns=cols).to_pylist())
    return tuple(json.loads(line) for line in Path(path).read_text().splitlines() if line.strip())


def load_articles(data_file=None, condition="none", continent=None, max_body_bytes=2000, **kwargs):
    """Held-out articles (JSONL or parquet with url, country, continent, title, text; e.g. a news build's
    ``<experiment>/<template>/parquet/test.parquet``), each split into a metadata context and a body.

    Bodies longer than ``max_body_bytes`` UTF-8 bytes (default 2000; ``metacond eval`` uses the model's
    context length) are cut at a word boundary — the harness cannot score a continuation longer than
    the model's context — and the score is normalized by the bytes actually scored."""
    import datasets

    if not data_file:
        raise ValueError("localnews_ppl needs its data file: --metadata '{\"data_file\": \"test.parquet\"}'")
    p = Path(data_file)
    if not p.is_file():
        raise FileNotFoundError(f"localnews_ppl data file {data_file!r} does not exist")
    docs = []
    for r in _read_articles(str(p.resolve()), p.stat().st_mtime):
        if continent and r.get("continent") != continent:
            continue
        ctx, cont, article = split_article(r, condition)
        n_bytes = len(article.encode("utf-8"))
        if max_body_bytes and n_bytes > int(max_body_bytes):
            overhead = n_bytes - len(r["text"].encode("utf-8"))  # the TITLE/CONTENT lines around the text
            ctx, cont, article = split_article({**r, "text": _truncate_bytes(r["text"], max(1, int(max_body_bytes) - overhead))}, condition)
        docs.append({"context": ctx, "body": cont, "country": r["country"], "continent": r["continent"], "body_bytes": len(article.encode("utf-8"))})
    return {"test": datasets.Dataset.from_list(docs)}


def split_article(r, condition: str) -> tuple[str, str, str]:
    """(context, scored continuation, article).

    The context is the metadata block up to its last non-space character (a harness context never
    ends in whitespace; lm-eval would move it into the continuation anyway). The continuation is the
    block's closing blank line plus the article, so metadata conditions score one extra, nearly
    deterministic separator token; the article itself — and the bytes that normalize the score — are
    the same under every condition.
    """
    from metacond.data_builders.news.templates import Template

    t = Template("none" if condition == "none" else condition)
    url = r.get("short_url") or r.get("url") or ""
    doc, _, end = t.render({"url": url, "country": r["country"], "continent": r["continent"]}, r.get("title"), r["text"])
    ctx = doc[:end].rstrip()
    return ctx, doc[len(ctx):], doc[end:]


def ppl_context(doc) -> str:
    return doc["context"]


def ppl_target(doc) -> str:
    return doc["body"]


def ppl_results(doc, results):
    ll, _ = results[0]
    return {"bits_per_byte": (ll, doc["body_bytes"]), "byte_perplexity": (ll, doc["body_bytes"]), "nll_sum": ll}
