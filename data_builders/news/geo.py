"""URL → country → continent, offline.

Resolution order, recorded per row as ``country_source``:
1. an explicit country column (ISO alpha-2/alpha-3 code or English name, aliases included),
2. the curated outlet table ``outlets.csv`` (registered domain or a listed subdomain; each entry has a
   note naming the outlet and its home city; pan-continental agencies are marked ``international``
   and dropped with that reason rather than pinned to a headquarters country),
3. the URL's country-code TLD (``tldextract`` with its bundled public-suffix snapshot: no network;
   vanity ccTLDs such as .tv, .io, .co or .me are not countries),
4. an optional user ``domain,country`` CSV.

``countries.csv`` (ISO 3166-1 alpha-2/alpha-3, English short name, aliases, continent) was generated
from pycountry and pycountry-convert (North and South America are both ``america``, as in the
reference work) and is shipped so nothing is looked up at run time.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from metacond import MetacondError

HERE = Path(__file__).resolve().parent
VANITY_CCTLDS = {"tv", "io", "co", "me", "fm", "ai", "ly", "cc", "ws", "gg", "am", "to", "nu", "tk", "la", "so", "sh", "ac", "gl", "im", "vc", "ms", "media"}
CCTLD_EXCEPTIONS = {"uk": "gb"}
INTERNATIONAL = "international"
# The study's four continents, in report order (North and South America are one, as in the reference
# work). The one definition: builders, task configs, the evaluation and the study import it.
CONTINENTS = ("africa", "america", "asia", "europe")

PRESETS: dict[str, dict[str, list[str]]] = {
    # "Metadata Conditioned LLMs for Localization": 17 countries on 4 continents.
    "paper17": {
        "asia": ["in", "pk", "bd", "lk", "hk", "my", "ph"],
        "america": ["us", "ca", "jm"],
        "europe": ["gb", "ie"],
        "africa": ["ng", "za", "ke", "gh", "tz"],
    },
}


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    continent: str


@functools.lru_cache(maxsize=1)
def countries() -> dict[str, Country]:
    out = {}
    with open(HERE / "countries.csv", newline="") as f:
        for row in csv.DictReader(f):
            out[row["alpha2"]] = Country(row["alpha2"], row["name"], row["continent"])
    return out


@functools.lru_cache(maxsize=1)
def _name_index() -> dict[str, str]:
    idx: dict[str, str] = {}
    with open(HERE / "countries.csv", newline="") as f:
        for row in csv.DictReader(f):
            for key in [row["alpha2"], row["alpha3"], row["name"], *[a for a in row["aliases"].split("|") if a]]:
                idx.setdefault(_norm_name(key), row["alpha2"])
    return idx


def _norm_name(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


def country_code(value) -> str | None:
    """ISO alpha-2 (lower case) for a code or English name, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return _name_index().get(_norm_name(value))


def continent_of(code: str) -> str:
    return countries()[code].continent


@functools.lru_cache(maxsize=1)
def outlets() -> dict[str, str]:
    with open(HERE / "outlets.csv", newline="") as f:
        return {row["domain"].lower(): row["country"] for row in csv.DictReader(f)}


@functools.lru_cache(maxsize=1)
def _extractor():
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@dataclass(frozen=True)
class ParsedURL:
    host: str  # lower case, without www.
    registered: str  # registered domain, e.g. bbc.co.uk
    suffix: str  # public suffix, e.g. co.uk
    normalized: str  # host + path (+ query), no scheme, no www., no trailing slash


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


def parse_url(url) -> ParsedURL | None:
    """None for a missing or malformed URL (no host, spaces in the host, no public suffix)."""
    if not isinstance(url, str):
        return None
    u = url.strip()
    if not u or any(c.isspace() for c in u):
        return None
    u = _SCHEME.sub("", u)
    host, _, rest = u.partition("/")
    host = host.split("@")[-1].split(":")[0].lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    if not host or "." not in host or not re.fullmatch(r"[a-z0-9.-]+", host):
        return None
    split = _split_host(host)
    if split is None:
        return None
    registered, suffix = split
    path = rest.split("#")[0].rstrip("/")
    return ParsedURL(host, registered, suffix, host + ("/" + path if path else ""))


@functools.lru_cache(maxsize=200_000)
def _split_host(host: str) -> tuple[str, str] | None:
    """(registered domain, public suffix); cached because a corpus has few hosts and many rows."""
    ex = _extractor()(host)
    if not ex.suffix or not ex.domain:
        return None
    return f"{ex.domain}.{ex.suffix}", ex.suffix


def load_user_map(path: str | None) -> dict[str, str]:
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise MetacondError(f"domain map {path!r} does not exist")
    out = {}
    with open(p, newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            if not row or row[0].startswith("#") or (i == 0 and row[0].lower() == "domain"):
                continue
            if len(row) < 2:
                raise MetacondError(f"{path} line {i + 1}: expected 'domain,country', got {row!r}")
            code = country_code(row[1])
            if code is None:
                raise MetacondError(f"{path} line {i + 1}: unknown country {row[1]!r}")
            out[row[0].strip().lower()] = code
    return out


def resolve(url: ParsedURL | None, country_value=None, user_map: dict[str, str] | None = None) -> tuple[str | None, str]:
    """(alpha-2 code, source) or (None, drop reason)."""
    if country_value is not None and not (isinstance(country_value, str) and not country_value.strip()):
        code = country_code(country_value)
        if code is not None:
            return code, "column"
        if url is None:
            return None, "unknown_country"
    if url is None:
        return None, "malformed_url"
    table = outlets()
    # Most specific listed host first: news.sky.com before sky.com.
    parts = url.host.split(".")
    for i in range(len(parts) - 1):
        cand = ".".join(parts[i:])
        if cand in table:
            code = table[cand]
            return (None, "international_outlet") if code == INTERNATIONAL else (code, "outlet_table")
        if cand == url.registered:
            break
    last = url.suffix.split(".")[-1]
    last = CCTLD_EXCEPTIONS.get(last, last)
    if len(last) == 2 and last not in VANITY_CCTLDS and last in countries():
        return last, "cctld"
    if user_map:
        for i in range(len(parts) - 1):
            cand = ".".join(parts[i:])
            if cand in user_map:
                return user_map[cand], "user_map"
    return None, "unresolved_domain"
