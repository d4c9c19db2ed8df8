"""Row → metadata values and block: the one place that decides what a document's metadata says.

Every consumer renders through here — the news builder (pretraining documents and the tokenizer's
sample), the MCQ builders (the URL they store), the MCQ and perplexity eval tasks, and SFT prefixes —
so one article gets the same metadata bytes in training and in evaluation.

A row is any dict with some of (``ROW_COLUMNS``): ``source_url`` (the URL as published; news builds keep it),
``url`` (our normalized form: no scheme, no ``www.``, lower-case host; older builds and MCQ files),
``short_url`` (the host), ``country`` (ISO code or English name) or ``country_code``. The continent is
always derived from the country (``geo.continent_of``), never read from the row: the published
benchmark labels Jamaica and Canada "North America", which is not one of the study's continents.
A row without any URL (the published benchmark) gets its country's first outlet in ``outlets.csv``.
Any other field a template declares (``dateline``, ``date``, ``outlet``…) is the row's column of that
name, as one line of text (``column_value``).

URL styles (``url_style``):
- ``host``: the host, lower-cased, without ``www.`` or port (metacond's default; e.g. ``bbc.co.uk``).
- ``meco``: MeCo's short URL exactly — the URL with its scheme stripped, cut at the first ``/``; ``www.``,
  port and case are kept (e.g. ``www.BBC.co.uk:8080``).
- ``full``: the full article URL as published (the reference work's choice).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Mapping

from metacond import MetacondError

from . import geo
from .templates import DERIVED_FIELDS, Template

# The columns the renderer reads from a row besides a template's own column fields: one list for every consumer.
ROW_COLUMNS = ("source_url", "url", "short_url", "country", "country_code", "title", "text")
URL_STYLES = ("host", "meco", "full")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


def render_url(url: str, style: str = "host") -> str:
    """One URL in the given style; "" for no URL."""
    if style not in URL_STYLES:
        raise MetacondError(f"unknown url_style {style!r}; choose from {', '.join(URL_STYLES)}")
    u = (url or "").strip()
    if not u or style == "full":
        return u
    short = _SCHEME.sub("", u).split("/", 1)[0]
    if style == "meco":
        return short
    parsed = geo.parse_url(u)
    if parsed is not None:
        return parsed.host
    host = short.split("@")[-1].split(":")[0].lower()  # not a public-suffix host (e.g. an intranet name): same rule by hand
    return host[4:] if host.startswith("www.") else host


@functools.lru_cache(maxsize=1)
def _first_outlet() -> dict[str, str]:
    first: dict[str, str] = {}
    for domain, country in geo.outlets().items():
        first.setdefault(country, domain)
    return first


def article_url(row: Mapping[str, Any]) -> str:
    """The most complete URL a row holds (as published, else normalized, else host)."""
    return str(row.get("source_url") or row.get("url") or row.get("short_url") or "")


def country_of(row: Mapping[str, Any]) -> str | None:
    """ISO alpha-2 code of a row's country (code or English name), or None."""
    return geo.country_code(row.get("country_code") or "") or geo.country_code(row.get("country") or "")


def column_value(value: Any) -> str | None:
    """A column field's value as one metadata line: text with its whitespace runs (newlines too) made one space;
    None for a missing or blank value."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def metadata_values(row: Mapping[str, Any], url_style: str = "host", fields: tuple[str, ...] = DERIVED_FIELDS) -> dict[str, str | None]:
    """The values of ``fields``: {url, country (alpha-2), continent} derived from the row (raises MetacondError for an
    unknown country) and any other field read from the row's column of that name (None when missing)."""
    out: dict[str, str | None] = {}
    if any(f in DERIVED_FIELDS for f in fields):
        code = country_of(row)
        if code is None:
            raise MetacondError(f"unknown country {row.get('country')!r}")
        url = article_url(row) or _first_outlet().get(code, "")
        out |= {"url": render_url(url, url_style), "country": code, "continent": geo.continent_of(code)}
    for f in fields:
        if f not in DERIVED_FIELDS:
            out[f] = column_value(row.get(f))
    return out


def metadata_block(row: Mapping[str, Any], template: Template | str = "full", url_style: str = "host") -> str:
    """The template's metadata block with its closing blank line ("" for ``none``)."""
    t = template if isinstance(template, Template) else Template(template)
    return t.block(metadata_values(row, url_style, t.fields)) if t.fields else ""


def render_document(row: Mapping[str, Any], template: Template | str = "full", url_style: str = "host", drop=None):
    """(document, per-field character spans, end of the metadata block) of a row with ``title`` and ``text``."""
    t = template if isinstance(template, Template) else Template(template)
    values = metadata_values(row, url_style, t.fields) if t.fields else {}
    return t.render(values, row.get("title"), row["text"], drop)
