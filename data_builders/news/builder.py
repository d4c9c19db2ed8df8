"""Build the localization study's datasets from any English news corpus with URLs.

Pipeline: stream rows → check fields → resolve country (``geo``) → filter regions → clean (URL
normalization, whitespace, length filters) → exact dedup by normalized-text hash → write kept rows to
parquet shards (memory stays flat) → deterministic splits by URL hash (test balanced per continent)
→ experiments (``global``, ``region/<c>``, ``leave-one-out/<c>``) → per template: render the metadata
block, tokenize once with offsets (batched, ``num_proc``), derive labels and field spans → save each
experiment as a ``DatasetDict`` (save_to_disk and parquet) with the tokenizer, a dataset card and a
build report (JSON and a PNG of the regional composition). Every dropped row is counted by reason.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from metacond import MetacondError

from . import geo
from .templates import TEMPLATES, Template

MAIN_CONTINENTS = ("africa", "america", "asia", "europe")


@dataclass
class NewsBuildConfig:
    input: str = field(default=None, metadata={"help": "JSONL/JSON/CSV/parquet file, or a Hugging Face dataset name (streamed)."})
    input_split: str = field(default="train", metadata={"help": "Split of a Hub dataset."})
    input_config: str | None = field(default=None, metadata={"help": "Configuration of a Hub dataset."})
    url_column: str = field(default="url", metadata={"help": "Column holding the article URL."})
    text_column: str = field(default="text", metadata={"help": "Column holding the article body."})
    title_column: str | None = field(default=None, metadata={"help": "Title column (default: 'title' when present)."})
    country_column: str | None = field(default=None, metadata={"help": "Explicit country column (ISO code or English name), used first."})
    date_column: str | None = field(default=None, metadata={"help": "Date column kept in the text form (default: 'date' when present)."})
    domain_map: str | None = field(default=None, metadata={"help": "CSV of domain,country used after the built-in tables."})
    regions: str = field(default="paper17", metadata={"help": "paper17, all, or comma-separated ISO codes."})
    experiments: list[str] = field(default_factory=lambda: ["global", "region", "leave-one-out"], metadata={"help": "global, region, leave-one-out."})
    templates: list[str] = field(default_factory=lambda: ["full"], metadata={"help": f"Metadata templates: {', '.join(TEMPLATES)}."})
    line_format: str = field(default="{NAME}: {value}\n", metadata={"help": "Format of one metadata line ({NAME}, {name}, {value})."})
    separator: str = field(default="\n", metadata={"help": "Text between the metadata block and the body."})
    body_format: str = field(default="TITLE: {title}\n\nCONTENT: {text}", metadata={"help": "Body format when a title exists."})
    field_dropout: float = field(default=0.0, metadata={"help": "Build-time probability of leaving out each metadata field (per document, by hash)."})
    full_url: bool = field(default=False, metadata={"help": "Use the normalized full URL instead of MeCo's short URL (the host)."})
    min_chars: int = field(default=200, metadata={"help": "Drop documents with fewer characters."})
    max_chars: int = field(default=100_000, metadata={"help": "Drop documents with more characters."})
    validation_fraction: float = field(default=0.05, metadata={"help": "Share of documents (by URL hash) in validation."})
    test_fraction: float = field(default=0.05, metadata={"help": "Share of documents (by URL hash) in test, before balancing."})
    test_cap: int = field(default=2000, metadata={"help": "Cap on test documents, split equally across continents."})
    tokenizer: str | None = field(default=None, metadata={"help": "Tokenizer directory; default: train a byte-level BPE on the train split."})
    vocab_size: int = field(default=8000, metadata={"help": "Vocabulary of the trained tokenizer."})
    block_size: int | None = field(default=None, metadata={"help": "Also write fixed-length packed blocks of this many tokens."})
    num_proc: int = field(default=1, metadata={"help": "Processes for tokenization."})
    max_rows: int | None = field(default=None, metadata={"help": "Read at most this many input rows."})
    output_dir: str = field(default="runs/news", metadata={"help": "Where to write the build."})
    seed: int = field(default=0, metadata={"help": "Seed of the split hash and build-time dropout."})

    def __post_init__(self) -> None:
        if not self.input:
            raise MetacondError("--input is required (a news file or a Hub dataset name)")
        for e in self.experiments:
            if e not in ("global", "region", "leave-one-out"):
                raise MetacondError(f"unknown experiment {e!r}; choose from global, region, leave-one-out")
        for t in self.templates:
            if t not in TEMPLATES:
                raise MetacondError(f"unknown template {t!r}; choose from {', '.join(TEMPLATES)}")
        if not 0 <= self.field_dropout <= 1:
            raise MetacondError(f"field_dropout must be in [0, 1], got {self.field_dropout}")
        if self.min_chars < 0 or self.max_chars <= self.min_chars:
            raise MetacondError(f"need 0 <= min_chars < max_chars, got {self.min_chars}, {self.max_chars}")
        if not (0 <= self.validation_fraction < 1 and 0 < self.test_fraction < 1 and self.validation_fraction + self.test_fraction < 1):
            raise MetacondError("validation_fraction and test_fraction must be in [0, 1) and sum below 1")


def selected_countries(regions: str) -> set[str] | None:
    """None means every resolved country."""
    if regions == "all":
        return None
    if regions in geo.PRESETS:
        return {c for cs in geo.PRESETS[regions].values() for c in cs}
    codes = set()
    for part in regions.split(","):
        code = geo.country_code(part.strip())
        if code is None:
            raise MetacondError(f"unknown country {part.strip()!r} in --regions (use ISO codes or English names)")
        codes.add(code)
    return codes


# ---------------------------------------------------------------------------------------------- input
def iter_rows(cfg: NewsBuildConfig, counts: Counter) -> Iterator[dict[str, Any]]:
    p = Path(cfg.input)
    n = 0

    def limit(it):
        nonlocal n
        for row in it:
            if cfg.max_rows is not None and n >= cfg.max_rows:
                return
            n += 1
            yield row

    if p.suffix in (".jsonl", ".json", ".csv", ".parquet"):
        if not p.is_file():
            raise MetacondError(f"input file {cfg.input!r} does not exist")
        if p.suffix == ".jsonl" or (p.suffix == ".json" and _looks_like_jsonl(p)):
            def gen():
                with open(p, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        if not line.strip():
                            continue
                        try:
                            row = json.loads(line)
                        except json.JSONDecodeError:
                            counts["bad_json_line"] += 1
                            continue
                        if not isinstance(row, dict):
                            counts["bad_json_line"] += 1
                            continue
                        yield row
            yield from limit(gen())
        elif p.suffix == ".json":
            data = json.loads(p.read_text())
            if isinstance(data, dict):
                data = next((v for v in data.values() if isinstance(v, list)), [])
            yield from limit(r for r in data if isinstance(r, dict))
        elif p.suffix == ".csv":
            csv.field_size_limit(1 << 30)
            with open(p, newline="", encoding="utf-8", errors="replace") as f:
                yield from limit(csv.DictReader(f))
        else:
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(p)
            yield from limit(r for b in pf.iter_batches(batch_size=4096) for r in b.to_pylist())
        return
    if p.exists():
        raise MetacondError(f"unsupported input {cfg.input!r}: give a .jsonl, .json, .csv or .parquet file, or a Hub dataset name")
    import datasets

    try:
        ds = datasets.load_dataset(cfg.input, cfg.input_config, split=cfg.input_split, streaming=True)
    except Exception as e:  # hub errors come in many types; the user needs one line
        raise MetacondError(f"could not open dataset {cfg.input!r}: {str(e).splitlines()[0]}") from None
    yield from limit(iter(ds))


def _looks_like_jsonl(p: Path) -> bool:
    with open(p, encoding="utf-8", errors="replace") as f:
        head = f.read(1)
    return head == "{"


_WS = re.compile(r"[ \t\u00a0]+")
_NL = re.compile(r"\n{3,}")


def clean_text(s: str) -> str:
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = _WS.sub(" ", s)
    s = "\n".join(line.strip() for line in s.split("\n"))
    return _NL.sub("\n\n", s).strip()


def _hash01(key: str, seed: int) -> float:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "little") / 2**64


# ---------------------------------------------------------------------------------------------- stage 1
def collect(cfg: NewsBuildConfig, work: Path, progress: bool = True) -> tuple[Path, Counter, dict[str, Any]]:
    """Stream, resolve, clean and dedup; kept rows go to parquet shards under ``work``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    keep_codes = selected_countries(cfg.regions)
    user_map = geo.load_user_map(cfg.domain_map)
    counts: Counter = Counter()
    sources: Counter = Counter()
    unresolved: Counter = Counter()
    unrecognized_country_values: Counter = Counter()
    seen: set[bytes] = set()
    schema = pa.schema([("doc_id", pa.string()), ("url", pa.string()), ("short_url", pa.string()), ("country", pa.string()),
                        ("country_name", pa.string()), ("continent", pa.string()), ("country_source", pa.string()),
                        ("title", pa.string()), ("text", pa.string()), ("date", pa.string())])
    work.mkdir(parents=True, exist_ok=True)
    path = work / "kept.parquet"
    writer = pq.ParquetWriter(path, schema)
    buf: list[dict[str, Any]] = []
    title_col, date_col = cfg.title_column, cfg.date_column
    checked = False
    bar = tqdm(desc="reading", unit="doc", disable=not progress)
    for row in iter_rows(cfg, counts):
        bar.update(1)
        counts["input_rows"] += 1
        if not checked:
            cols = set(row)
            required = [cfg.text_column] + ([cfg.url_column] if cfg.country_column is None else [])
            required += [c for c in (cfg.country_column, cfg.title_column, cfg.date_column) if c is not None]
            missing = [c for c in required if c not in cols]
            if missing:
                raise MetacondError(f"input has no column {missing[0]!r} (columns: {', '.join(sorted(cols))}); map it with --{_flag_for(cfg, missing[0])}")
            title_col = title_col or ("title" if "title" in cols else None)
            date_col = date_col or ("date" if "date" in cols else None)
            checked = True
        text = row.get(cfg.text_column)
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
        raw_url = row.get(cfg.url_column)
        if raw_url is not None and not isinstance(raw_url, str):
            counts["non_string_url"] += 1
            continue
        parsed = geo.parse_url(raw_url)
        cval = row.get(cfg.country_column) if cfg.country_column else None
        if cval is not None and geo.country_code(cval) is None and isinstance(cval, str) and cval.strip():
            unrecognized_country_values[cval.strip()[:40]] += 1
        code, source = geo.resolve(parsed, cval, user_map)
        if code is None:
            counts[source] += 1
            if source in ("unresolved_domain", "international_outlet") and parsed is not None:
                unresolved[f"{parsed.registered} ({source})"] += 1
            continue
        if keep_codes is not None and code not in keep_codes:
            counts["outside_regions"] += 1
            continue
        continent = geo.continent_of(code)
        h = hashlib.blake2b(" ".join(text.lower().split()).encode(), digest_size=16).digest()
        if h in seen:
            counts["duplicate"] += 1
            continue
        seen.add(h)
        title = row.get(title_col) if title_col else None
        title = clean_text(title) if isinstance(title, str) else None
        date = row.get(date_col) if date_col else None
        sources[source] += 1
        counts["kept"] += 1
        buf.append({"doc_id": h.hex(), "url": parsed.normalized if parsed else "", "short_url": parsed.host if parsed else "", "country": code,
                    "country_name": geo.countries()[code].name, "continent": continent, "country_source": source, "title": title or None,
                    "text": text, "date": None if date is None else str(date)})
        if len(buf) >= 5000:
            writer.write_table(pa.Table.from_pylist(buf, schema))
            buf = []
    bar.close()
    if buf:
        writer.write_table(pa.Table.from_pylist(buf, schema))
    writer.close()
    if not checked:
        raise MetacondError(f"input {cfg.input!r} has no rows")
    extra = {"country_source": dict(sources), "unresolved_domains": dict(unresolved.most_common(50)),
             "unrecognized_country_values": dict(unrecognized_country_values.most_common(20))}
    return path, counts, extra


def _flag_for(cfg: NewsBuildConfig, col: str) -> str:
    for name in ("text_column", "url_column", "country_column", "title_column", "date_column"):
        if getattr(cfg, name) == col:
            return name
    return "text_column"


# ---------------------------------------------------------------------------------------------- splits and experiments
def assign_splits(kept, cont: np.ndarray, cfg: NewsBuildConfig) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    keys = [u or d for u, d in zip(kept["url"], kept["doc_id"])]
    u = np.array([_hash01(k, cfg.seed) for k in keys])
    split = np.where(u < cfg.test_fraction, 2, np.where(u < cfg.test_fraction + cfg.validation_fraction, 1, 0))
    present = [c for c in MAIN_CONTINENTS if (cont == c).any()] or sorted(set(cont))
    test_by = {c: np.where((split == 2) & (cont == c))[0] for c in present}
    per = min(cfg.test_cap // max(1, len(present)), min((len(v) for v in test_by.values()), default=0))
    moved = 0
    for c, idx in test_by.items():
        order = idx[np.argsort(u[idx])]
        overflow = order[per:]
        split[overflow] = 0  # beyond the balanced cap: back to training, never scored
        moved += len(overflow)
    other = np.where((split == 2) & ~np.isin(cont, present))[0]
    split[other] = 0
    out = {name: np.where(split == k)[0] for k, name in enumerate(("train", "validation", "test"))}
    return out, {"test_per_continent": int(per), "test_overflow_to_train": int(moved + len(other))}


def balanced_interleave(indices: np.ndarray, cont: np.ndarray, continents: list[str]) -> np.ndarray:
    """Equal documents per continent (the smallest's count), interleaved round-robin."""
    groups = [indices[cont[indices] == c] for c in continents]
    if not groups or min(len(g) for g in groups) == 0:
        return np.zeros(0, np.int64)
    n = min(len(g) for g in groups)
    return np.stack([g[:n] for g in groups], 1).reshape(-1)


def experiment_indices(splits: dict[str, np.ndarray], cont: np.ndarray, experiments: list[str]) -> dict[str, dict[str, np.ndarray]]:
    present = [c for c in MAIN_CONTINENTS if (cont == c).any()]
    out: dict[str, dict[str, np.ndarray]] = {}
    for e in experiments:
        if e == "global":
            out["global"] = {s: balanced_interleave(ix, cont, present) for s, ix in splits.items() if s != "test"}
        elif e == "region":
            for c in present:
                out[f"region/{c}"] = {s: ix[cont[ix] == c] for s, ix in splits.items() if s != "test"}
        elif e == "leave-one-out":
            for c in present:
                rest = [x for x in present if x != c]
                out[f"leave-one-out/{c}"] = {s: balanced_interleave(ix, cont, rest) for s, ix in splits.items() if s != "test"}
    for name in out:
        out[name]["test"] = splits["test"]  # one balanced test set for every experiment
    return out


# ---------------------------------------------------------------------------------------------- tokenizer and encoding
def get_tokenizer(cfg: NewsBuildConfig, kept, train_idx: np.ndarray, template: Template):
    from transformers import AutoTokenizer

    from metacond.modeling.tokenizer import build_text_tokenizer

    if cfg.tokenizer:
        if not Path(cfg.tokenizer).is_dir():
            raise MetacondError(f"tokenizer directory {cfg.tokenizer!r} does not exist")
        tok = AutoTokenizer.from_pretrained(cfg.tokenizer)
        if tok.eos_token_id is None:
            raise MetacondError(f"tokenizer at {cfg.tokenizer} has no eos token")
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        if tok.bos_token_id is None:
            tok.bos_token = tok.eos_token
        return tok
    sample = train_idx[:50_000]
    sub = kept.select(sample)

    def docs():
        for r in sub:
            yield template.render({"url": r["short_url"], "country": r["country"], "continent": r["continent"]}, r["title"], r["text"])[0]

    return build_text_tokenizer(docs(), vocab_size=cfg.vocab_size)


def render_and_encode(batch: dict[str, list], template: Template, tokenizer, cfg: NewsBuildConfig) -> dict[str, list]:
    from .encode import encode_batch

    docs, spans, ends = [], [], []
    for i in range(len(batch["text"])):
        values = {"url": batch["url"][i] if cfg.full_url else batch["short_url"][i], "country": batch["country"][i], "continent": batch["continent"][i]}
        drop = None
        if cfg.field_dropout > 0 and template.fields:
            drop = tuple(_hash01(f"{batch['doc_id'][i]}/{f}", cfg.seed + 1) < cfg.field_dropout for f in template.fields)
        d, s, e = template.render(values, batch["title"][i], batch["text"][i], drop)
        docs.append(d)
        spans.append(s)
        ends.append(e)
    enc = encode_batch(tokenizer, docs, spans, ends)
    enc["document"] = docs
    return enc


def pack_blocks(ds, block_size: int) -> dict[str, list]:
    """Fixed-length blocks with labels and per-document position_ids (document boundaries)."""
    ids_out, lab_out, pos_out = [], [], []
    cur_i, cur_l, cur_p = [], [], []
    for ids, labels in zip(ds["input_ids"], ds["labels"]):
        labels = list(labels)
        labels[0] = -100
        for s in range(0, len(ids), block_size):
            piece_i, piece_l = ids[s:s + block_size], labels[s:s + block_size]
            if len(cur_i) + len(piece_i) > block_size:
                pad = block_size - len(cur_i)
                ids_out.append(cur_i + [0] * pad)
                lab_out.append(cur_l + [-100] * pad)
                pos_out.append(cur_p + list(range(pad)))
                cur_i, cur_l, cur_p = [], [], []
            cur_i += piece_i
            cur_l += piece_l
            cur_p += list(range(len(piece_i)))
    if cur_i:
        pad = block_size - len(cur_i)
        ids_out.append(cur_i + [0] * pad)
        lab_out.append(cur_l + [-100] * pad)
        pos_out.append(cur_p + list(range(pad)))
    return {"input_ids": ids_out, "labels": lab_out, "position_ids": pos_out}


# ---------------------------------------------------------------------------------------------- main entry
def build_news(cfg: NewsBuildConfig, progress: bool = True) -> dict[str, Any]:
    import os

    import datasets

    # Forked workers each tokenize single-threaded (measured faster than Rust threads in one process here).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true" if cfg.num_proc <= 1 else "false")
    t0 = time.time()
    out = Path(cfg.output_dir)
    work = out / "_work"
    stages: dict[str, float] = {}
    kept_path, counts, extra = collect(cfg, work, progress)
    stages["read_resolve_clean"] = time.time() - t0
    # A private cache per build: datasets would otherwise reuse Arrow/map caches keyed by this path from an earlier build.
    kept = datasets.load_dataset("parquet", data_files=str(kept_path), split="train", cache_dir=str(work / "hf_cache"))
    if len(kept) == 0:
        raise MetacondError(f"no documents left after resolution and cleaning (dropped: {dict(counts)})")
    cont = np.array(kept["continent"])
    splits, split_info = assign_splits(kept, cont, cfg)
    exps = experiment_indices(splits, cont, cfg.experiments)
    templates = {t: Template(name=t, line_format=cfg.line_format, separator=cfg.separator, body_format=cfg.body_format) for t in cfg.templates}
    t1 = time.time()
    # Train on documents with every field, so metadata lines tokenize compactly whatever the template.
    full = Template("full", line_format=cfg.line_format, separator=cfg.separator, body_format=cfg.body_format)
    tokenizer = get_tokenizer(cfg, kept, splits["train"], full)
    stages["tokenizer"] = time.time() - t1
    tok_dir = out / "tokenizer"
    tokenizer.save_pretrained(str(tok_dir))

    experiments_info: dict[str, Any] = {}
    for tname, template in templates.items():
        encoded = kept.map(render_and_encode, batched=True, batch_size=1024, num_proc=cfg.num_proc if cfg.num_proc > 1 else None,
                           fn_kwargs={"template": template, "tokenizer": tokenizer, "cfg": cfg}, desc=f"tokenizing ({tname})")
        stages[f"encode_{tname}"] = time.time() - t1 - stages["tokenizer"]
        t2 = time.time()
        for ename, idx in exps.items():
            # An empty split cannot round-trip through save_to_disk/load_from_disk: leave it out and say so.
            empty = [s for s, ix in idx.items() if len(ix) == 0]
            dd = datasets.DatasetDict({s: encoded.select(ix) for s, ix in idx.items() if len(ix)})
            if "train" not in dd:
                raise MetacondError(f"experiment {ename} has no training documents (per continent: {dict(Counter(kept['continent']))})")
            edir = out / ename / tname
            dd.save_to_disk(str(edir / "hf"))
            (edir / "parquet").mkdir(parents=True, exist_ok=True)
            for s, d in dd.items():
                d.to_parquet(str(edir / "parquet" / f"{s}.parquet"))
            tokenizer.save_pretrained(str(edir / "tokenizer"))
            if cfg.block_size:
                blocks = datasets.Dataset.from_dict(pack_blocks(dd["train"], cfg.block_size))
                blocks.to_parquet(str(edir / "parquet" / "train_blocks.parquet"))
            sizes = {s: len(d) for s, d in dd.items()}
            per = {s: dict(Counter(cont[ix].tolist())) for s, ix in idx.items() if len(ix)}
            (edir / "metacond_build.json").write_text(json.dumps({"key": f"news:{ename}:{tname}", "metadata_mode": "remove", "template": tname,
                                                                   "fields": list(template.fields), "experiment": ename, "splits": sizes,
                                                                   "empty_splits": empty,
                                                                   "config": asdict(cfg)}, indent=1, default=str))
            experiments_info[f"{ename}/{tname}"] = {"splits": sizes, "continents": per, "empty_splits": empty}
        stages[f"write_{tname}"] = time.time() - t2
    per_country = Counter(kept["country"])
    report = {
        "input": cfg.input, "config": asdict(cfg), "counts": dict(counts),
        "dropped": {k: v for k, v in counts.items() if k not in ("input_rows", "kept")},
        "resolved_fraction": round((counts["kept"] + counts["outside_regions"] + counts["duplicate"]) /
                                   max(1, counts["input_rows"] - sum(counts[k] for k in ("missing_text", "non_string_text", "empty_text", "too_short", "too_long", "bad_json_line"))), 4),
        "per_country": dict(per_country.most_common()), "per_continent": dict(Counter(cont.tolist())),
        **extra, "splits": {s: int(len(ix)) for s, ix in splits.items()}, **split_info,
        "experiments": experiments_info, "tokenizer": str(tok_dir), "vocab_size": len(tokenizer), "stage_seconds": {k: round(v, 2) for k, v in stages.items()}, "wall_seconds": round(time.time() - t0, 2),
    }
    (out / "build_report.json").write_text(json.dumps(report, indent=1, default=str))
    plot_composition(report, out / "composition.png")
    (out / "README.md").write_text(dataset_card(cfg, report))
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return report


def plot_composition(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pc = report["per_country"]
    if not pc:
        return
    cont = {c: geo.continent_of(c) for c in pc}
    order = sorted(pc, key=lambda c: (cont[c], -pc[c]))
    colors = {k: f"C{i}" for i, k in enumerate(sorted(set(cont.values())))}
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(order)), 3.8), dpi=110)
    ax.bar(range(len(order)), [pc[c] for c in order], color=[colors[cont[c]] for c in order])
    ax.set_xticks(range(len(order)), order, rotation=90, fontsize=7)
    ax.set_ylabel("documents kept")
    ax.set_title("Regional composition of the build")
    for k, c in colors.items():
        ax.bar([], [], color=c, label=k)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def dataset_card(cfg: NewsBuildConfig, report: dict[str, Any]) -> str:
    import yaml

    configs = []
    for name in report["experiments"]:
        configs.append({"config_name": name.replace("/", "--"),
                        "data_files": [{"split": s, "path": f"{name}/parquet/{s}.parquet"} for s in ("train", "validation", "test")
                                       if s in report["experiments"][name]["splits"]]})
    header = {"language": ["en"], "tags": ["news", "metadata-conditioning", "localization", "metacond"], "configs": configs}
    rows = "\n".join(f"| {c} | {geo.countries()[c].name} | {geo.continent_of(c)} | {n} |" for c, n in report["per_country"].items())
    drops = "\n".join(f"| {k} | {v} |" for k, v in sorted(report["dropped"].items(), key=lambda kv: -kv[1]))
    exps = "\n".join(f"| {k} | {v['splits'].get('train', 0)} | {v['splits'].get('validation', 0)} | {v['splits'].get('test', 0)} |" for k, v in report["experiments"].items())
    return f"""---
{yaml.safe_dump(header, sort_keys=False)}---

# Geo-tagged news build (metacond)

Built from `{cfg.input}` with regions `{cfg.regions}`; {report['counts'].get('kept', 0)} of {report['counts'].get('input_rows', 0)} input rows kept.
Country resolution: explicit column, then a curated outlet table, then the URL's country-code TLD, then a user map
(sources: {report['country_source']}). Text is the source's; check its license before redistribution.

Metadata block (template `full`): `URL: <host>\\nCOUNTRY: <iso alpha-2>\\nCONTINENT: <continent>\\n\\n` before `TITLE: …\\n\\nCONTENT: …`.
`labels` are -100 over the block (from character offsets), `meta_spans` give each field's token span.

## Documents per country

| code | country | continent | documents |
|---|---|---|---|
{rows}

## Dropped rows by reason

| reason | rows |
|---|---|
{drops}

## Experiments (documents)

| experiment/template | train | validation | test |
|---|---|---|---|
{exps}

Command: `metacond news build --input {cfg.input} --regions {cfg.regions} --experiments {' '.join(cfg.experiments)} --templates {' '.join(cfg.templates)} --output_dir {cfg.output_dir}`
"""
