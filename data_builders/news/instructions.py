"""An instruction set derived from a news build's *train* split, so the study can instruction-tune offline.

Two tasks per article (each row keeps the article's country, continent and short URL, so the
metadata-prefixed SFT variant can put the article's metadata block before the instruction):

- ``country``: "Which country is this news article from?" + the first 600 characters → the country's
  English name;
- ``headline``: "Write a headline for this news article." + the first 800 characters → the title
  (articles with a title only).

No entity cloze and nothing in the benchmark's question format ("Fill in the blank: … ____ …",
``mcq.QUESTION_PREFIX``/``mcq.BLANK``): instruction tuning on the test's own task and template, even
from training articles, would teach the format the MCQ evaluation then measures (issue 13).

Only training articles are used — never the held-out test split the MCQ benchmark is built from.
Rows come out in the prompt/completion layout (``prompt``, ``completion``, plus metadata fields).
"""

from __future__ import annotations

from typing import Any

TASKS = ("country", "headline")


def news_instructions(articles: list[dict[str, Any]], tasks=TASKS, max_rows: int | None = None) -> list[dict[str, Any]]:
    from . import geo
    from .metadata import article_url

    bad = [t for t in tasks if t not in TASKS]
    if bad:
        from metacond import MetacondError

        raise MetacondError(f"unknown instruction task {bad[0]!r}; choose from {', '.join(TASKS)}")
    rows: list[dict[str, Any]] = []
    names = geo.countries()
    for a in articles:
        text = a.get("text")
        code = a.get("country")
        if not isinstance(text, str) or code not in names:
            continue
        # The raw URL: SFT renders the metadata block from these fields through data_builders.news.metadata, in the build's url_style.
        meta = {"country": code, "continent": geo.continent_of(code), "url": article_url(a)}
        body = " ".join(text.split())
        if "country" in tasks:
            rows.append({"task": "country", "prompt": f"Which country is this news article from?\n\n{body[:600]}", "completion": names[code].name, **meta})
        if "headline" in tasks and isinstance(a.get("title"), str) and a["title"].strip():
            rows.append({"task": "headline", "prompt": f"Write a headline for this news article.\n\n{body[:800]}", "completion": a["title"].strip(), **meta})
        if max_rows is not None and len(rows) >= max_rows:
            return rows[:max_rows]
    return rows
