"""Build the localization study's datasets from any English news corpus with URLs.

Stages: (1) ``collect``: stream rows, check fields, resolve the country (``geo``), filter regions, clean,
dedup, append kept rows to one parquet file; (2) splits by URL hash (test balanced per continent) and
the experiment plan (``global``, ``region/<c>``, ``leave-one-out/<c>``) from three columns only;
(3) tokenizer (trained on the train split unless given); (4) per template, ``writer``: render the
metadata block, tokenize with offsets, derive labels and field spans, and write every experiment as a
``DatasetDict`` (save_to_disk and parquet), streaming throughout. Then a dataset card and a build report
(JSON and a PNG of the regional composition). Every dropped row is counted by reason.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metacond import MetacondError
from metacond.modeling.summary import BuildManifest

from . import geo
from .collect import collect, hash01
from .metadata import ROW_COLUMNS, URL_STYLES, render_document
from .templates import DERIVED_FIELDS, TEMPLATES, Template


@dataclass
class NewsBuildConfig:
    input: str | None = field(default=None, metadata={"help": "JSONL/JSON/CSV/parquet/text file (optionally .gz/.bz2/.xz/.zst), a glob of such "
                                                              "files, a save_to_disk folder, or a Hugging Face dataset name (streamed)."})
    input_split: str = field(default="train", metadata={"help": "Split of a Hub dataset."})
    input_config: str | None = field(default=None, metadata={"help": "Configuration of a Hub dataset."})
    url_column: str = field(default="url", metadata={"help": "Column holding the article URL (a dotted path reads nested records: metadata.url)."})
    text_column: str = field(default="text", metadata={"help": "Column holding the article body."})
    title_column: str | None = field(default=None, metadata={"help": "Title column (default: 'title' when present)."})
    country_column: str | None = field(default=None, metadata={"help": "Explicit country column (ISO code or English name), used first."})
    date_column: str | None = field(default=None, metadata={"help": "Date column kept in the text form (default: 'date' when present)."})
    domain_map: str | None = field(default=None, metadata={"help": "CSV of domain,country used after the built-in tables."})
    regions: str = field(default="paper17", metadata={"help": "paper17, all, or a comma list of ISO codes, country names and continent names (e.g. 'asia,ng')."})
    experiments: list[str] = field(default_factory=lambda: ["global", "region", "leave-one-out"], metadata={"help": "global, region, leave-one-out."})
    templates: list[str] = field(default_factory=lambda: ["full"], metadata={"help": f"Metadata templates: {', '.join(TEMPLATES)}, or a comma list of "
                                                                             "fields in prefix order: url, country, continent or any input column "
                                                                             "(e.g. 'country,dateline'; 'dateline?' leaves the line out when empty, "
                                                                             "else such rows are dropped and counted)."})
    balance: str = field(default="continent", metadata={"help": "Mixture of the global and leave-one-out sets: continent (the paper: the same "
                                                                "number of articles from each continent, the smallest's) or none (every article)."})
    line_format: str = field(default="{NAME}: {value}\n", metadata={"help": "Format of one metadata line ({NAME}, {name}, {value})."})
    separator: str = field(default="\n", metadata={"help": "Text between the metadata block and the body."})
    body_format: str = field(default="TITLE: {title}\n\nCONTENT: {text}", metadata={"help": "Body format when a title exists."})
    field_dropout: float = field(default=0.0, metadata={"help": "Build-time probability of leaving out each metadata field (per document, by hash)."})
    url_style: str = field(default="host", metadata={"help": "URL in the metadata block: host (lower case, no www.), meco (MeCo's short URL: "
                                                           "scheme stripped, cut at the first '/', www./port/case kept) or full (as published)."})
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
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace a non-empty output_dir (its experiments are removed first)."})
    seed: int = field(default=0, metadata={"help": "Seed of the split hash and build-time dropout."})

    def __post_init__(self) -> None:
        if not self.input:
            raise MetacondError("--input is required (a news file or a Hub dataset name)")
        for e in self.experiments:
            if e not in ("global", "region", "leave-one-out"):
                raise MetacondError(f"unknown experiment {e!r}; choose from global, region, leave-one-out")
        names = [Template(t).name for t in self.templates]  # one line for a bad field or template
        if len(set(names)) != len(names):
            raise MetacondError(f"--templates names the same fields twice: {' '.join(self.templates)}")
        if self.balance not in ("continent", "none"):
            raise MetacondError(f"unknown balance {self.balance!r}; choose continent or none")
        if self.url_style not in URL_STYLES:
            raise MetacondError(f"unknown url_style {self.url_style!r}; choose from {', '.join(URL_STYLES)}")
        if not 0 <= self.field_dropout <= 1:
            raise MetacondError(f"field_dropout must be in [0, 1], got {self.field_dropout}")
        if self.min_chars < 0 or self.max_chars <= self.min_chars:
            raise MetacondError(f"need 0 <= min_chars < max_chars, got {self.min_chars}, {self.max_chars}")
        if not (0 <= self.validation_fraction < 1 and 0 < self.test_fraction < 1 and self.validation_fraction + self.test_fraction < 1):
            raise MetacondError("validation_fraction and test_fraction must be in [0, 1) and sum below 1")


def selected_countries(regions: str) -> set[str] | None:
    """None means every resolved country. Otherwise a comma list of ISO codes, English country names, continent
    names (every country of that continent: africa, america, asia, europe, oceania) and presets (paper17)."""
    if regions.strip().lower() == "all":
        return None
    by_continent: dict[str, set[str]] = {}
    for code, c in geo.countries().items():
        by_continent.setdefault(c.continent, set()).add(code)
    codes: set[str] = set()
    for part in regions.split(","):
        key = part.strip()
        if key in geo.PRESETS:
            codes |= {c for cs in geo.PRESETS[key].values() for c in cs}
        elif key.lower() in by_continent:
            codes |= by_continent[key.lower()]
        elif (iso := geo.country_code(key)) is not None:
            codes.add(iso)
        else:
            raise MetacondError(f"unknown country {key!r} in --regions (use ISO codes, English names, continents "
                                f"({', '.join(sorted(by_continent))}) or {', '.join(geo.PRESETS)})")
    return codes


# ---------------------------------------------------------------------------------------------- splits and experiments
def assign_splits(keys: list[str], cont: np.ndarray, cfg: NewsBuildConfig) -> tuple[np.ndarray, dict[str, int]]:
    """Per row 0 (train), 1 (validation) or 2 (test), from a hash of the URL (or text hash) alone.

    The test split is then balanced: the same number of documents per continent (at most
    ``test_cap`` in all); the overflow goes back to training and is never scored.
    """
    u = np.array([hash01(k, cfg.seed) for k in keys])
    split = np.where(u < cfg.test_fraction, 2, np.where(u < cfg.test_fraction + cfg.validation_fraction, 1, 0)).astype(np.int8)
    present = [c for c in geo.CONTINENTS if (cont == c).any()] or sorted(set(cont.tolist()))
    test_by = {c: np.nonzero((split == 2) & (cont == c))[0] for c in present}
    per = min(cfg.test_cap // max(1, len(present)), min((len(v) for v in test_by.values()), default=0))
    moved = 0
    for c, idx in test_by.items():
        overflow = idx[np.argsort(u[idx], kind="stable")][per:]
        split[overflow] = 0
        moved += len(overflow)
    other = np.nonzero((split == 2) & ~np.isin(cont, present))[0]
    split[other] = 0
    return split, {"test_per_continent": int(per), "test_overflow_to_train": int(moved + len(other))}


SPLITS = ("train", "validation", "test")


def plan_experiments(split: np.ndarray, cont: np.ndarray, experiments: list[str], balance: str = "continent") -> tuple[np.ndarray, dict[str, dict[str, tuple[list[int], int | None]]], dict[int, str], np.ndarray]:
    """Rows grouped into pools (split × continent; one shared test pool) and each experiment split as pools to merge.

    Returns (pool id per row, -1 when no experiment uses the row; plan: experiment → split → (pool ids,
    rows per pool or None for all); pool id → continent; rows per pool). With ``balance="continent"``, ``global`` and
    ``leave-one-out`` take the same number of documents from each continent (the smallest's), interleaved round-robin;
    with ``"none"`` they take every document (the natural mixture).
    """
    present = [c for c in geo.CONTINENTS if (cont == c).any()]
    P = len(present)
    groups = np.full(len(split), -1, np.int32)
    pool_cont: dict[int, str] = {}
    for si in (0, 1):
        for ci, c in enumerate(present):
            groups[(split == si) & (cont == c)] = si * P + ci
            pool_cont[si * P + ci] = c
    test_pool = 2 * P
    groups[split == 2] = test_pool
    size = np.bincount(groups[groups >= 0], minlength=2 * P + 1)

    def balanced(si: int, conts: list[str]) -> tuple[list[int], int | None]:
        gids = [si * P + present.index(c) for c in conts]
        if balance == "none":
            return gids, None
        return gids, int(min(size[g] for g in gids)) if gids else 0

    plan: dict[str, dict[str, tuple[list[int], int | None]]] = {}
    for e in experiments:
        if e == "global":
            plan["global"] = {s: balanced(si, present) for si, s in enumerate(SPLITS[:2])}
        elif e == "region":
            for c in present:
                plan[f"region/{c}"] = {s: ([si * P + present.index(c)], None) for si, s in enumerate(SPLITS[:2])}
        elif e == "leave-one-out":
            for c in present:
                plan[f"leave-one-out/{c}"] = {s: balanced(si, [x for x in present if x != c]) for si, s in enumerate(SPLITS[:2])}
    for name in plan:
        plan[name]["test"] = ([test_pool], None)  # one balanced test set for every experiment
    # Encode only rows some experiment writes: the first `need` rows of each pool.
    need: dict[int, int] = {}
    for splits in plan.values():
        for gids, limit in splits.values():
            for g in gids:
                need[g] = max(need.get(g, 0), size[g] if limit is None else limit)
    for g in range(2 * P + 1):
        idx = np.nonzero(groups == g)[0]
        groups[idx[need.get(g, 0):]] = -1
    for name in plan:
        for s, (gids, limit) in list(plan[name].items()):
            if sum(size[g] if limit is None else limit for g in gids) == 0:
                del plan[name][s]
    pool_cont[test_pool] = "*"
    return groups, plan, pool_cont, size


# ---------------------------------------------------------------------------------------------- tokenizer
def get_tokenizer(cfg: NewsBuildConfig, kept_path: Path, split: np.ndarray, template: Template):
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
    import pyarrow.parquet as pq

    def docs(limit: int = 50_000):
        start, n = 0, 0
        pf = pq.ParquetFile(kept_path)
        columns = [c for c in (*ROW_COLUMNS, *template.column_fields) if c in pf.schema_arrow.names]
        for b in pf.iter_batches(batch_size=1024, columns=columns):
            rows = b.to_pylist()
            for i, r in enumerate(rows):
                if split[start + i] == 0 and n < limit:
                    n += 1
                    yield render_document(r, template, cfg.url_style)[0]
            start += len(rows)
            if n >= limit:
                return

    return build_text_tokenizer(docs(), vocab_size=cfg.vocab_size)


# ---------------------------------------------------------------------------------------------- main entry
def prepare_output_dir(out: Path, overwrite: bool) -> None:
    """Like the Trainer's output_dir: a folder holding an earlier build is refused unless ``overwrite``, which empties it,
    so no experiment of another build (another tokenizer, other templates) is left beside the new ones.
    An interrupted build's scratch folder alone (``_work``) does not count."""
    import shutil

    if not out.is_dir():
        return
    leftovers = [p.name for p in out.iterdir() if p.name != "_work"]
    if leftovers and not overwrite:
        raise MetacondError(f"output_dir {str(out)!r} is not empty ({', '.join(sorted(leftovers)[:4])}{', ...' if len(leftovers) > 4 else ''}): "
                            "pass --overwrite_output_dir to replace that build")
    shutil.rmtree(out)


def build_news(cfg: NewsBuildConfig, progress: bool = True) -> dict[str, Any]:
    import os
    import shutil

    import pyarrow.parquet as pq

    from .writer import encode_pools, write_experiment

    # Forked workers each tokenize single-threaded (measured faster than Rust threads in one process here).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true" if cfg.num_proc <= 1 else "false")
    t0 = time.time()
    out = Path(cfg.output_dir)
    prepare_output_dir(out, cfg.overwrite_output_dir)
    work = out / "_work"
    stages: dict[str, float] = {}
    kept_path, counts, extra = collect(cfg, selected_countries(cfg.regions), work, progress)
    stages["read_resolve_clean"] = time.time() - t0
    if counts["kept"] == 0:
        raise MetacondError(f"no documents left after resolution and cleaning (dropped: {dict(counts)})")
    cols = pq.read_table(kept_path, columns=["doc_id", "url", "continent"])
    cont = np.array(cols.column("continent").to_pylist())
    keys = [u or d for u, d in zip(cols.column("url").to_pylist(), cols.column("doc_id").to_pylist())]
    del cols
    split, split_info = assign_splits(keys, cont, cfg)
    del keys
    groups, plan, pool_cont, pool_size = plan_experiments(split, cont, cfg.experiments, cfg.balance)
    for ename, splits in plan.items():
        if "train" not in splits:
            raise MetacondError(f"experiment {ename} has no training documents (per continent: {dict(Counter(cont.tolist()))})")

    def make_template(spec: str, **kw: Any) -> Template:
        return Template(spec, line_format=cfg.line_format, separator=cfg.separator, body_format=cfg.body_format, **kw)

    templates = {t.name: t for t in (make_template(spec) for spec in cfg.templates)}
    t1 = time.time()
    # Train on documents with every field, so metadata lines tokenize compactly whatever the template.
    every = tuple(dict.fromkeys(DERIVED_FIELDS + tuple(f for t in templates.values() for f in t.column_fields)))
    full = make_template("all", fields=every, optional=every)
    tokenizer = get_tokenizer(cfg, kept_path, split, full)
    stages["tokenizer"] = time.time() - t1
    tok_dir = out / "tokenizer"
    tokenizer.save_pretrained(str(tok_dir))

    experiments_info: dict[str, Any] = {}
    test_counts = dict(Counter(cont[split == 2].tolist()))
    for tname, template in templates.items():
        t2 = time.time()
        pool_dir = work / "pools" / tname
        pools = encode_pools(kept_path, groups, pool_dir, template, tokenizer, cfg, progress, f"tokenizing ({tname})")
        stages[f"encode_{tname}"] = time.time() - t2
        t2 = time.time()
        for ename, splits in plan.items():
            edir = out / ename / tname
            # A pool with no rows (a continent without validation articles) has no file: it adds nothing.
            padding = write_experiment(edir, {s: ([pools[g] for g in gids if g in pools], limit) for s, (gids, limit) in splits.items()}, cfg.block_size)
            tokenizer.save_pretrained(str(edir / "tokenizer"))
            sizes, per = {}, {}
            for s, (gids, limit) in splits.items():
                per[s] = test_counts if s == "test" else {pool_cont[g]: int(limit if limit is not None else pool_size[g]) for g in gids}
                sizes[s] = sum(per[s].values())
            empty = [s for s in SPLITS if s not in splits]
            BuildManifest(key=f"news:{ename}:{tname}", metadata_mode="remove", template=tname, config=asdict(cfg),
                          extra={"fields": list(template.field_names), "optional_fields": list(template.optional), "experiment": ename,
                                 "splits": sizes, "empty_splits": empty}).save(edir)
            experiments_info[f"{ename}/{tname}"] = {"splits": sizes, "continents": per, "empty_splits": empty,
                                                   "dropped": composition_dropped(split, cont, per),
                                                   **({"block_padding": round(padding, 4)} if padding is not None else {})}
        shutil.rmtree(pool_dir, ignore_errors=True)
        stages[f"write_{tname}"] = time.time() - t2
    not_text = ("missing_text", "non_string_text", "empty_text", "too_short", "too_long", "bad_json_line")
    report = {
        "input": cfg.input, "config": asdict(cfg), "counts": dict(counts),
        "dropped": {k: v for k, v in counts.items() if k not in ("input_rows", "kept")},
        "resolved_fraction": round((counts["kept"] + counts["outside_regions"] + counts["duplicate"]) /
                                   max(1, counts["input_rows"] - sum(counts[k] for k in not_text if k != "bad_json_line")), 4),
        "per_continent": dict(Counter(cont.tolist())), **extra,
        "splits": {s: int((split == k).sum()) for k, s in enumerate(SPLITS)}, **split_info,
        "experiments": experiments_info, "unused_continents": unused_continents(cont, experiments_info),
        "tokenizer": str(tok_dir), "vocab_size": len(tokenizer),
        "stage_seconds": {k: round(v, 2) for k, v in stages.items()}, "wall_seconds": round(time.time() - t0, 2),
    }
    (out / "build_report.json").write_text(json.dumps(report, indent=1, default=str))
    plot_composition(report, out / "composition.png")
    (out / "README.md").write_text(dataset_card(cfg, report))
    shutil.rmtree(work, ignore_errors=True)
    return report


def composition_dropped(split: np.ndarray, cont: np.ndarray, kept: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per train/validation split and continent: resolved articles of that split the experiment does not use (balancing
    to the smallest continent, or a continent outside the experiment). Test is shared and balanced across experiments."""
    out = {}
    for k, s in enumerate(SPLITS[:2]):
        have = Counter(cont[split == k].tolist())
        out[s] = {c: int(n - kept.get(s, {}).get(c, 0)) for c, n in sorted(have.items()) if n - kept.get(s, {}).get(c, 0) > 0}
    return out


def unused_continents(cont: np.ndarray, experiments: dict[str, Any]) -> list[str]:
    """Resolved continents whose articles no experiment trains on (e.g. Oceania: outside the paper's four)."""
    used = {c for e in experiments.values() for c in e["continents"].get("train", {})}
    return sorted(set(cont.tolist()) - used)


def plot_composition(report: dict[str, Any], path: Path) -> None:
    from metacond.figures import pyplot

    plt = pyplot()

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
    from matplotlib.patches import Patch

    # Explicit handles: empty bar containers all take the default colour in a legend.
    ax.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], fontsize=7, title="continent")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _per_continent(d: dict[str, int]) -> str:
    return ", ".join(f"{c} {n}" for c, n in sorted(d.items())) or "none"


def _templates_line(cfg: NewsBuildConfig) -> str:
    out = []
    for spec in cfg.templates:
        t = Template(spec)
        out.append(f"`{t.name}` ({', '.join(f + ('?' if f in t.optional else '') for f in t.field_names) or 'no metadata'})")
    return "; ".join(out)


def dataset_card(cfg: NewsBuildConfig, report: dict[str, Any]) -> str:
    import shlex

    import yaml

    assert cfg.input is not None, "NewsBuildConfig.__post_init__ requires --input"

    configs = []
    for name in report["experiments"]:
        configs.append({"config_name": name.replace("/", "--"),
                        "data_files": [{"split": s, "path": f"{name}/parquet/{s}.parquet"} for s in ("train", "validation", "test")
                                       if s in report["experiments"][name]["splits"]]})
    header = {"language": ["en"], "license": "other", "pretty_name": f"metacond geo-tagged news ({cfg.regions})",
              "tags": ["news", "metadata-conditioning", "localization", "metacond"], "configs": configs}
    rows = "\n".join(f"| {c} | {geo.countries()[c].name} | {geo.continent_of(c)} | {n} |" for c, n in report["per_country"].items())
    drops = "\n".join(f"| {k} | {v} |" for k, v in sorted(report["dropped"].items(), key=lambda kv: -kv[1]))
    exps = "\n".join(f"| {k} | {v['splits'].get('train', 0)} | {v['splits'].get('validation', 0)} | {v['splits'].get('test', 0)} | "
                     f"{_per_continent(v['continents'].get('train', {}))} | {_per_continent(v.get('dropped', {}).get('train', {}))} |"
                     for k, v in report["experiments"].items())
    unused = report.get("unused_continents") or []
    return f"""---
{yaml.safe_dump(header, sort_keys=False)}---

# Geo-tagged news build (metacond)

Built from `{cfg.input}` with regions `{cfg.regions}`; {report['counts'].get('kept', 0)} of {report['counts'].get('input_rows', 0)} input rows kept.
Country resolution: explicit column, then a curated outlet table, then the URL's country-code TLD, then a user map
(sources: {report['country_source']}).

**Provenance and licensing**: the article text, titles and URLs are the source corpus's (`{cfg.input}`); this build only
cleans, labels and tokenizes them, and its `license: other` means the source's terms apply — check them before
redistributing. Country labels come from outlet tables and country-code domains, not from article content.

Metadata block (template `full`): `URL: <host>\\nCOUNTRY: <iso alpha-2>\\nCONTINENT: <continent>\\n\\n` before `TITLE: …\\n\\nCONTENT: …`.
Templates of this build (fields in prefix order; `?`: optional, its line left out when empty): {_templates_line(cfg)}.
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

Mixture of `global` and leave-one-out sets: `--balance {cfg.balance}` ({'the same number of training articles per continent, the smallest continent' + "'" + 's' if cfg.balance == 'continent' else 'every resolved article: the natural mixture'}).
The test split is shared and balanced per continent.

| experiment/template | train | validation | test | train kept per continent | train dropped per continent |
|---|---|---|---|---|---|
{exps}

{('Resolved but used by no experiment: ' + ', '.join(f"{c} ({report['per_continent'].get(c, 0)} articles)" for c in unused) + '.') if unused else 'Every resolved continent is used.'}

Command: `metacond news build --input {shlex.quote(cfg.input)} --regions {shlex.quote(cfg.regions)} --experiments {' '.join(cfg.experiments)} --templates {' '.join(map(shlex.quote, cfg.templates))} --balance {cfg.balance} --output_dir {shlex.quote(cfg.output_dir)}`
"""
