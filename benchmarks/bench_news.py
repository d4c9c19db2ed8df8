"""News builder throughput and memory.

1. End-to-end docs/s (read, resolve, clean, dedup, template, tokenize, write) of `metacond news build`
   with num_proc=2 on a synthetic N-row JSONL (article lengths lognormal around ~2,400 characters),
   against a plain per-row Python loop doing the same work (same resolver, cleaner, template and
   tokenizer, one tokenizer call per row) on the same rows in the same run. Targets: ≥ 5× and ≥ 2,000 docs/s.
2. Peak RSS of a build over a streamed M-row input, measured in a child process (target < 2 GB).

Both builds use one pre-trained tokenizer so tokenizer training is not timed.

Usage: python benchmarks/bench_news.py [--rows 200000] [--loop-rows 20000] [--rss-rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUTLETS = ["thehindu.com", "dawn.com", "thedailystar.net", "dailymirror.lk", "scmp.com", "thestar.com.my", "inquirer.net", "nytimes.com", "cbc.ca",
           "jamaica-gleaner.com", "bbc.co.uk", "irishtimes.com", "punchng.com", "news24.com", "nation.africa", "myjoyonline.com", "thecitizen.co.tz"]
VOCAB = ("the of and to in a is that for on was with said by as at from his it an were are which this be has have had not but after "
         "government minister police market election court president people year city state new country police health school bank").split()


def write_input(path: Path, n: int, seed: int = 0, mean_chars: float = 2400) -> None:
    rng = np.random.default_rng(seed)
    words = np.array(VOCAB)
    lens = np.clip(rng.lognormal(np.log(mean_chars / 6.0), 0.6, size=n), 30, 20000).astype(int)
    with open(path, "w") as f:
        for i in range(n):
            w = words[rng.integers(0, len(words), size=lens[i])]
            text = " ".join(w) + f" story {i}."
            f.write(json.dumps({"url": f"https://www.{OUTLETS[i % len(OUTLETS)]}/news/{i}", "title": f"Headline {i}", "text": text,
                                "date": "2024-05-01"}) + "\n")


def naive_encode(tok, doc: str, spans, end: int) -> dict:
    """Tokenize one document the plain way (transformers call with offsets) and mask the metadata block in Python."""
    enc = tok(doc, add_special_tokens=False, return_offsets_mapping=True)
    ids, offs = enc["input_ids"], enc["offset_mapping"]
    labels = [-100 if s < end else i for i, (s, _) in zip(ids, offs)]
    n_masked = sum(1 for s, _ in offs if s < end)
    starts = [next((k for k, o in enumerate(offs) if o[0] >= a), n_masked) for a, _ in spans]
    meta = [[a + 1, b + 1] for a, b in zip(starts, starts[1:] + [n_masked])]
    return {"input_ids": [tok.bos_token_id] + ids + [tok.eos_token_id], "labels": [-100] + labels + [tok.eos_token_id], "meta_spans": meta}


def plain_loop(path: Path, tok, n: int, naive: bool = True) -> float:
    """The same work, one row at a time, in plain Python (``naive=False``: with metacond's per-row encoder instead)."""
    from metacond.data_builders.news import geo
    from metacond.data_builders.news.collect import clean_text, text_hash
    from metacond.data_builders.news.encode import encode_batch
    from metacond.data_builders.news.metadata import render_document
    from metacond.data_builders.news.templates import Template

    t = Template("full")
    keep = {c for cs in geo.PRESETS["paper17"].values() for c in cs}
    seen = set()
    out = []
    t0 = time.perf_counter()
    with open(path) as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            r = json.loads(line)
            text = clean_text(r["text"])
            if len(text) < 200:
                continue
            p = geo.parse_url(r["url"])
            code, _ = geo.resolve(p)
            if code is None or code not in keep:
                continue
            h = text_hash(text)
            if h in seen:
                continue
            seen.add(h)
            doc, spans, end = render_document({"source_url": r["url"], "country": code, "title": r.get("title"), "text": text}, t)
            out.append(naive_encode(tok, doc, spans, end) if naive else encode_batch(tok, [doc], [spans], [end]))
    return time.perf_counter() - t0


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc), 0 when it is gone."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for t in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (t / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--loop-rows", type=int, default=20_000, help="rows for the (slow) per-row baseline; docs/s compares rates")
    ap.add_argument("--rss-rows", type=int, default=1_000_000, help="0 skips the memory check")
    ap.add_argument("--num-proc", type=int, default=2)
    ap.add_argument("--experiment", default="region", help="region encodes every kept row once, like the loop (global encodes only the balanced subset)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    from metacond.data_builders.news.builder import NewsBuildConfig, build_news
    from metacond.modeling.tokenizer import build_text_tokenizer

    tmp = Path(tempfile.mkdtemp(prefix="bench-news-"))
    src = tmp / "news.jsonl"
    write_input(src, a.rows)
    tok = build_text_tokenizer([" ".join(VOCAB) * 3, "URL: dawn.com\nCOUNTRY: pk\nCONTINENT: asia\n\nTITLE: Headline 1\n\nCONTENT: story"] * 50,
                               vocab_size=1000)
    tok.save_pretrained(tmp / "tok")
    res: dict = {"rows": a.rows}
    t0 = time.perf_counter()
    rep = build_news(NewsBuildConfig(input=str(src), tokenizer=str(tmp / "tok"), experiments=[a.experiment], num_proc=a.num_proc, output_dir=str(tmp / "out"),
                                     test_fraction=0.01, validation_fraction=0.01), progress=False)
    t_build = time.perf_counter() - t0
    res["build_seconds"] = t_build
    res["build_docs_per_s"] = a.rows / t_build
    res["kept"] = rep["counts"]["kept"]
    import os

    # One thread everywhere below: the loops are single-process by definition.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    t_loop = plain_loop(src, tok, a.loop_rows)
    res["loop_docs_per_s"] = a.loop_rows / t_loop
    res["speedup"] = res["build_docs_per_s"] / res["loop_docs_per_s"]
    t_loop2 = plain_loop(src, tok, a.loop_rows, naive=False)
    res["loop_metacond_encoder_docs_per_s"] = a.loop_rows / t_loop2
    res["speedup_vs_loop_metacond_encoder"] = res["build_docs_per_s"] / res["loop_metacond_encoder_docs_per_s"]
    # The tokenizer alone on the same rendered documents, one thread: the per-core ceiling both sides share.
    import pyarrow.parquet as pq

    docs = pq.read_table(next((tmp / "out").glob("**/full/parquet/train.parquet")), columns=["document"]).column("document").to_pylist()[:10_000]
    t0 = time.perf_counter()
    for d in docs:
        tok.backend_tokenizer.encode(d, add_special_tokens=False)
    res["tokenizer_one_thread_docs_per_s"] = len(docs) / (time.perf_counter() - t0)
    print(f"tokenizer alone, one thread: {res['tokenizer_one_thread_docs_per_s']:,.0f} docs/s on {len(docs):,} rendered documents "
          f"(mean {sum(map(len, docs)) / len(docs):,.0f} characters); {a.num_proc} processes can do at most {a.num_proc}x that")
    print(f"{a.rows:,} rows: metacond news build (num_proc={a.num_proc}, experiment {a.experiment}, {rep['counts']['kept']:,} kept) "
          f"{t_build:.1f} s = {res['build_docs_per_s']:,.0f} docs/s")
    print(f"  vs plain per-row loop (transformers call with offsets, Python mask) {res['loop_docs_per_s']:,.0f} docs/s on {a.loop_rows:,} rows "
          f"-> {res['speedup']:.1f}x")
    print(f"  vs per-row loop with metacond's encoder {res['loop_metacond_encoder_docs_per_s']:,.0f} docs/s -> {res['speedup_vs_loop_metacond_encoder']:.1f}x")
    print(f"  build stages (s): {rep['stage_seconds']}")
    if a.rss_rows:
        big = tmp / "big.jsonl"
        write_input(big, a.rss_rows, seed=1, mean_chars=1200)
        code = ("import sys, resource; from metacond.data_builders.news.builder import NewsBuildConfig, build_news; "
                f"build_news(NewsBuildConfig(input={str(big)!r}, tokenizer={str(tmp / 'tok')!r}, experiments=['global'], num_proc=2, "
                f"output_dir={str(tmp / 'big_out')!r}, test_fraction=0.001, validation_fraction=0.001), progress=False)")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code])
        tree_peak = 0
        while proc.poll() is None:
            tree_peak = max(tree_peak, tree_rss_kb(proc.pid))
            time.sleep(0.2)
        if proc.returncode:
            raise SystemExit(f"the {a.rss_rows:,}-row build failed (exit {proc.returncode})")
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        res["rss_rows"] = a.rss_rows
        res["rss_peak_mb"] = peak_kb / 1024
        res["rss_tree_peak_mb"] = tree_peak / 1024
        res["rss_build_seconds"] = time.perf_counter() - t0
        print(f"{a.rss_rows:,}-row streamed build: peak RSS {peak_kb / 1024:,.0f} MB (largest single process), "
              f"{tree_peak / 1024:,.0f} MB summed over the build's processes (sampled every 0.2 s), {res['rss_build_seconds']:.0f} s"
              + ("" if peak_kb > before else " (note: an earlier child had the higher peak)"))
    res["experiment"] = a.experiment
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
