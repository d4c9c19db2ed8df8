"""An instruction set derived from a news build's *train* split, so the study can instruction-tune offline.

Three tasks per article (each row keeps the article's country, continent and short URL, so the
metadata-prefixed SFT variant can put the article's metadata block before the instruction):

- ``country``: "Which country is this news article from?" + the first 600 characters → the country's
  English name;
- ``headline``: "Write a headline for this news article." + the first 800 characters → the title
  (articles with a title only);
- ``entity``: "Fill in the blank with the right name: <sentence with ____>" → the name (the same
  entity-cloze candidates as the MCQ builder, at most one per article).

Only training articles are used — never the held-out test split the MCQ benchmark is built from.
Rows come out in the prompt/completion layout (``prompt``, ``completion``, plus metadata fields).
"""

from __future__ import annotations

from typing import Any

TASKS = ("country", "headline", "entity")


def news_instructions(articles: list[dict[str, Any]], tasks=TASKS, max_rows: int | None = None) -> list[dict[str, Any]]:
    from . import geo
    from types import SimpleNamespace

    from .mcq import candidates

    bad = [t for t in tasks if t not in TASKS]
    if bad:
        from metacond import MetacondError

        raise MetacondError(f"unknown instruction task {bad[0]!r}; choose from {', '.join(TASKS)}")
    cfg = SimpleNamespace(min_sentence_chars=40, max_sentence_chars=300)  # the MCQ builder's sentence bounds
    rows: list[dict[str, Any]] = []
    names = geo.countries()
    for a in articles:
        text = a.get("text")
        code = a.get("country")
        if not isinstance(text, str) or code not in names:
            continue
        meta = {"country": code, "continent": a.get("continent") or names[code].continent, "url": a.get("short_url") or a.get("url") or ""}
        body = " ".join(text.split())
        if "country" in tasks:
            rows.append({"task": "country", "prompt": f"Which country is this news article from?\n\n{body[:600]}", "completion": names[code].name, **meta})
        if "headline" in tasks and isinstance(a.get("title"), str) and a["title"].strip():
            rows.append({"task": "headline", "prompt": f"Write a headline for this news article.\n\n{body[:800]}", "completion": a["title"].strip(), **meta})
        if "entity" in tasks:
            cands = candidates({"text": text}, cfg)
            if cands:
                sent, name = cands[0]
                q = sent.replace(name, "____", 1)
                if name.lower() not in q.lower():
                    rows.append({"task": "entity", "prompt": f"Fill in the blank with the right name: {q}", "completion": name, **meta})
        if max_rows is not None and len(rows) >= max_rows:
            return rows[:max_rows]
    return rows
