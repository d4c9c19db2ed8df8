"""Stage 1 of the news build: stream rows, check fields, resolve the country, clean, dedup.

Rows are read in chunks (JSONL lines are parsed inside the workers), prepared in forked workers and
come back in input order; the parent keeps the first of each normalized-text duplicate and appends
kept rows to one parquet file, so memory stays flat however long the input is. Every row that is
not kept is counted under one reason.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from itertools import chain
from pathlib import Path
from typing import Any, Iterator

from metacond import MetacondError

from . import geo
from .metadata import column_value
from .parallel import ordered_map, state

CHUNK = 1000

KEPT_SCHEMA_FIELDS = (("doc_id", "string"), ("url", "string"), ("short_url", "string"), ("country", "string"), ("country_name", "string"),
                      ("continent", "string"), ("country_source", "string"), ("title", "string"), ("text", "string"), ("date", "string"),
                      ("source_url", "string"))  # the URL as published: the ``meco`` and ``full`` URL styles render from it



def declared_columns(cfg) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(column fields of every template in first-seen order, those some template requires). A required field's
    missing value drops the row (counted as ``missing_<field>``) so every template renders the same articles."""
    from .templates import Template

    fields: list[str] = []
    required: set[str] = set()
    for spec in cfg.templates:
        t = Template(spec)
        for f in t.column_fields:
            if f not in fields:
                fields.append(f)
            if f not in t.optional:
                required.add(f)
    return tuple(fields), tuple(f for f in fields if f in required)


def kept_schema_fields(cfg) -> tuple[tuple[str, str], ...]:
    """The kept rows' columns: the fixed ones, then every declared column field not already among them."""
    have = {n for n, _ in KEPT_SCHEMA_FIELDS}
    return KEPT_SCHEMA_FIELDS + tuple((f, "string") for f in declared_columns(cfg)[0] if f not in have)


_WS = re.compile(r"[ \t\u00a0]{2,}|[\t\u00a0]")
_NL = re.compile(r"\n{3,}")


def clean_text(s: str) -> str:
    # Substring checks first: most articles need no regex pass at all, and the regex scan dominated stage 1.
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    if "  " in s or "\t" in s or "\u00a0" in s:
        s = _WS.sub(" ", s)
    s = "\n".join(line.strip() for line in s.split("\n"))
    if "\n\n\n" in s:
        s = _NL.sub("\n\n", s)
    return s.strip()


def hash01(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from a string: splits and build-time dropout depend on content, not order."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "little") / 2**64


def text_hash(text: str) -> bytes:
    return hashlib.blake2b(" ".join(text.lower().split()).encode(), digest_size=16).digest()


# ---------------------------------------------------------------------------------------------- input
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")
_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text", ".text": "text"}


def _builder_of(name: str) -> str | None:
    """The ``datasets`` builder of a file name, compression suffix aside (``a.jsonl.gz`` -> json)."""
    stem = name[: -len(next(c for c in COMPRESSED if name.endswith(c)))] if name.endswith(COMPRESSED) else name
    return next((b for suffix, b in _BUILDERS.items() if stem.endswith(suffix)), None)


def _looks_local(spec: str) -> bool:
    """A path rather than a Hub name (``owner/name`` or a bare canonical name): a file suffix, a glob, an explicit
    prefix, something that exists here, more than two components, or an ``a/b`` whose ``a`` is a local folder."""
    if spec.startswith((".", "/", "~")) or any(ch in spec for ch in "*?[") or _builder_of(spec) is not None or Path(spec).exists():
        return True
    parts = spec.split("/")
    return len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir())


def _local_rows(spec: str, split: str) -> Iterator:
    """Rows of a local input: plain JSONL/JSON/CSV/parquet files are read here (a bad JSON line is counted, not
    fatal); compressed files, globs and text files go through ``datasets`` streaming; a ``save_to_disk`` folder
    through ``load_from_disk``."""
    import glob

    p = Path(spec).expanduser()
    if p.is_dir():
        import datasets

        if not any((p / f).is_file() for f in ("dataset_info.json", "dataset_dict.json", "state.json")):
            raise MetacondError(f"input folder {spec!r} is not a datasets save_to_disk folder; give a file, a glob or a Hub dataset name")
        ds = datasets.load_from_disk(str(p))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise MetacondError(f"input folder {spec!r} has no split {split!r} (splits: {', '.join(ds)}); choose one with --input_split")
            ds = ds[split]
        return iter(ds)
    files = sorted(glob.glob(str(p))) if any(ch in spec for ch in "*?[") else ([str(p)] if p.is_file() else [])
    if not files:
        raise MetacondError(f"no such file: {spec!r}" if not any(ch in spec for ch in "*?[") else f"no file matches {spec!r}")
    kinds = {_builder_of(Path(f).name) for f in files}
    if None in kinds or len(kinds) > 1:
        raise MetacondError(f"unsupported input {spec!r}: give .jsonl/.json/.csv/.parquet/.txt files (optionally compressed: "
                            f"{', '.join(COMPRESSED)}), a glob of one kind, a save_to_disk folder or a Hub dataset name")
    kind = kinds.pop()
    if len(files) == 1 and not files[0].endswith(COMPRESSED) and kind != "text":
        return _plain_file_rows(Path(files[0]))
    import datasets

    try:
        return iter(datasets.load_dataset(kind, data_files=files, split="train", streaming=True))
    except Exception as e:  # one line for any reader error
        raise MetacondError(f"could not read {spec!r}: {str(e).splitlines()[0]}") from None


def _plain_file_rows(p: Path) -> Iterator:
    if p.suffix == ".jsonl" or (p.suffix == ".json" and _looks_like_jsonl(p)):
        f = open(p, encoding="utf-8", errors="replace")
        return (line for line in f if line.strip())
    if p.suffix == ".json":
        data = json.loads(p.read_text())
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), [])
        return iter(data)
    if p.suffix == ".csv":
        csv.field_size_limit(1 << 30)
        f = open(p, newline="", encoding="utf-8", errors="replace")
        return iter(csv.DictReader(f))
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(p)
    return (r for b in pf.iter_batches(batch_size=CHUNK) for r in b.to_pylist())


def iter_chunks(cfg) -> Iterator[list]:
    """Chunks of rows: raw JSON lines (parsed by the workers) or dicts. ``max_rows`` counts non-empty lines/rows."""
    if _looks_local(cfg.input):
        rows = _local_rows(cfg.input, cfg.input_split)
    else:
        import datasets

        try:
            ds = datasets.load_dataset(cfg.input, cfg.input_config, split=cfg.input_split, streaming=True)
        except Exception as e:  # hub errors come in many types; the user needs one line
            raise MetacondError(f"could not open dataset {cfg.input!r}: {str(e).splitlines()[0]}") from None
        rows = iter(ds)
    chunk: list = []
    n = 0
    for r in rows:
        if cfg.max_rows is not None and n >= cfg.max_rows:
            break
        n += 1
        chunk.append(r)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _looks_like_jsonl(p: Path) -> bool:
    with open(p, encoding="utf-8", errors="replace") as f:
        return f.read(1) == "{"


def _as_row(r) -> dict | None:
    if isinstance(r, str):
        try:
            r = json.loads(r)
        except json.JSONDecodeError:
            return None
    return r if isinstance(r, dict) else None


_MISSING = object()


def _lookup(row: dict, name: str) -> Any:
    """A row's value under a column name or a dotted path into nested records (``metadata.url``); _MISSING if absent."""
    if name in row:
        return row[name]
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def column(row: dict, name: str) -> Any:
    """``_lookup`` with None for an absent column."""
    value = _lookup(row, name)
    return None if value is _MISSING else value


def has_column(row: dict, name: str) -> bool:
    return _lookup(row, name) is not _MISSING


def _flag_for(cfg, col: str) -> str:
    for name in ("text_column", "url_column", "country_column", "title_column", "date_column"):
        if getattr(cfg, name) == col:
            return name
    return "text_column"


def check_columns(cfg, row: dict) -> tuple[str | None, str | None]:
    """One line naming the missing column; returns the (title, date) columns to use."""
    cols = set(row)
    required = [cfg.text_column] + ([cfg.url_column] if cfg.country_column is None else [])
    required += [c for c in (cfg.country_column, cfg.title_column, cfg.date_column) if c is not None]
    missing = [c for c in required if not has_column(row, c)]
    if missing:
        raise MetacondError(f"input has no column {missing[0]!r} (columns: {', '.join(sorted(cols))}); map it with --{_flag_for(cfg, missing[0])}")
    title_col, date_col = cfg.title_column or ("title" if "title" in cols else None), cfg.date_column or ("date" if "date" in cols else None)
    for f in declared_columns(cfg)[0]:
        if (date_col if f == "date" else f) not in cols:
            raise MetacondError(f"input has no column {f!r} for the metadata field {f!r} of --templates {' '.join(cfg.templates)} "
                                f"(columns: {', '.join(sorted(cols))})")
    return title_col, date_col


# ---------------------------------------------------------------------------------------------- per-chunk work (in workers)
def prepare_chunk(chunk: list) -> tuple[list[tuple], Counter, Counter, Counter]:
    st = state()
    cfg, keep_codes, user_map, title_col, date_col = st["cfg"], st["keep_codes"], st["user_map"], st["title_col"], st["date_col"]
    fields, required, extra = st["fields"], st["required"], st["extra"]
    names = geo.countries()
    counts: Counter = Counter()
    unresolved: Counter = Counter()
    unrecognized: Counter = Counter()
    out: list[tuple] = []
    for raw in chunk:
        row = _as_row(raw)
        if row is None:
            counts["bad_json_line"] += 1
            continue
        counts["input_rows"] += 1
        text = column(row, cfg.text_column)
        if text is None:
            counts["missing_text"] += 1
            continue
        if not isinstance(text, str):
            counts["non_string_text"] += 1
            continue
        if len(text) > 20 * cfg.max_chars:
            counts["too_long"] += 1  # skip cleaning work on absurd rows
            continue
        text = clean_text(text)
        if not text:
            counts["empty_text"] += 1
            continue
        if len(text) < cfg.min_chars:
            counts["too_short"] += 1
            continue
        if len(text) > cfg.max_chars:
            counts["too_long"] += 1
            continue
        raw_url = column(row, cfg.url_column)
        if raw_url is not None and not isinstance(raw_url, str):
            counts["non_string_url"] += 1
            continue
        parsed = geo.parse_url(raw_url)
        cval = column(row, cfg.country_column) if cfg.country_column else None
        if cval is not None and geo.country_code(cval) is None and isinstance(cval, str) and cval.strip():
            unrecognized[cval.strip()[:40]] += 1
        code, source = geo.resolve(parsed, cval, user_map)
        if code is None:
            if source == "malformed_url" and (raw_url is None or not raw_url.strip()):
                source = "missing_url"  # absent is not malformed: README promises a missing-field reason
            counts[source] += 1
            if source in ("unresolved_domain", "international_outlet") and parsed is not None:
                unresolved[f"{parsed.registered} ({source})"] += 1
            continue
        if keep_codes is not None and code not in keep_codes:
            counts["outside_regions"] += 1
            continue
        date = column(row, date_col) if date_col else None
        values = {f: column_value(date if f == "date" else column(row, f)) for f in fields}
        lacking = next((f for f in required if values[f] is None), None)
        if lacking is not None:
            counts[f"missing_{lacking}"] += 1
            continue
        title = column(row, title_col) if title_col else None
        title = clean_text(title) if isinstance(title, str) else None
        out.append((text_hash(text), parsed.normalized if parsed else "", parsed.host if parsed else "", code, names[code].name,
                    names[code].continent, source, title or None, text, None if date is None else str(date),
                    raw_url.strip() if raw_url else "", *(values[f] for f in extra)))
    return out, counts, unresolved, unrecognized


# ---------------------------------------------------------------------------------------------- stage 1
def collect(cfg, keep_codes: set[str] | None, work: Path, progress: bool = True) -> tuple[Path, Counter, dict[str, Any]]:
    """Kept rows go to ``work/kept.parquet`` in input order; returns (path, counts, extra report fields)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    user_map = geo.load_user_map(cfg.domain_map)
    counts: Counter = Counter()
    unresolved: Counter = Counter()
    unrecognized: Counter = Counter()
    sources: Counter = Counter()
    per_country: Counter = Counter()
    chunks = iter_chunks(cfg)
    # The first parsable row decides the column mapping before workers fork.
    head: list[list] = []
    first = None
    for chunk in chunks:
        head.append(chunk)
        first = next((r for r in map(_as_row, chunk) if r is not None), None)
        if first is not None:
            break
    if first is None:
        raise MetacondError(f"input {cfg.input!r} has no rows")
    title_col, date_col = check_columns(cfg, first)
    schema = pa.schema([(n, getattr(pa, t)()) for n, t in kept_schema_fields(cfg)])
    work.mkdir(parents=True, exist_ok=True)
    path = work / "kept.parquet"
    writer = pq.ParquetWriter(path, schema)
    seen: set[bytes] = set()
    bar = tqdm(desc="reading", unit="doc", disable=not progress)
    fields, required = declared_columns(cfg)
    have = {n for n, _ in KEPT_SCHEMA_FIELDS}
    shared = {"cfg": cfg, "keep_codes": keep_codes, "user_map": user_map, "title_col": title_col, "date_col": date_col,
              "fields": fields, "required": required, "extra": [f for f in fields if f not in have]}
    for recs, c, u, un in ordered_map(prepare_chunk, chain(head, chunks), cfg.num_proc, shared):
        counts.update(c)
        unresolved.update(u)
        unrecognized.update(un)
        bar.update(c["input_rows"] + c["bad_json_line"])
        cols: list[list] = [[] for _ in schema]
        for r in recs:
            if r[0] in seen:
                counts["duplicate"] += 1
                continue
            seen.add(r[0])
            counts["kept"] += 1
            sources[r[6]] += 1
            per_country[r[3]] += 1
            cols[0].append(r[0].hex())
            for k in range(1, len(r)):
                cols[k].append(r[k])
        if cols[0]:
            writer.write_table(pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(cols, schema)], schema=schema))
    bar.close()
    writer.close()
    extra = {"country_source": dict(sources), "per_country": dict(per_country.most_common()),
             "unresolved_domains": dict(unresolved.most_common(50)), "unrecognized_country_values": dict(unrecognized.most_common(20))}
    return path, counts, extra
