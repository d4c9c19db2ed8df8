"""Stage 3 of the news build: encode each kept document once per template, then write experiments.

Encoding streams the kept parquet file in batches through forked workers (render the template, one
Rust ``encode_batch`` per batch, labels built in numpy) into temporary *pools*, one per
(split, continent) (one for the shared test split), as lz4 Arrow streams in input order. Every
experiment split is then a merge of pools read batch by batch: one pool for a region, a round-robin
interleave truncated to the smallest continent for ``global`` and ``leave-one-out``. Outputs (parquet,
a ``save_to_disk`` folder written with ``datasets``' own ``ArrowWriter``, optional packed blocks)
are appended batch by batch, so memory does not grow with the corpus.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .collect import hash01
from .encode import encode_arrow
from .metadata import ROW_COLUMNS, render_document
from .parallel import ordered_map, state

if TYPE_CHECKING:
    import pyarrow.parquet as pq
    from datasets.arrow_writer import ArrowWriter

BATCH = 1024


# ---------------------------------------------------------------------------------------------- encoding (in workers)
def encode_record_batch(item: tuple[Any, np.ndarray]) -> tuple[bytes, np.ndarray]:
    """Render and encode one batch; returns it with the new columns as Arrow IPC bytes (cheap to pass back)."""
    import pyarrow as pa

    batch, groups = item
    st = state()
    template, tokenizer, cfg = st["template"], st["tokenizer"], st["cfg"]
    d = batch.to_pydict()
    docs, spans, ends = [], [], []
    cols = [k for k in (*ROW_COLUMNS, *template.column_fields) if k in d]
    for i in range(batch.num_rows):
        row = {k: d[k][i] for k in cols}
        drop = None
        if cfg.field_dropout > 0 and template.fields:
            drop = tuple(hash01(f"{d['doc_id'][i]}/{f}", cfg.seed + 1) < cfg.field_dropout for f in template.fields)
        doc, s, e = render_document(row, template, cfg.url_style, drop)
        docs.append(doc)
        spans.append(s)
        ends.append(e)
    enc = encode_arrow(tokenizer, docs, spans, ends)
    table = pa.Table.from_batches([batch]).append_column("document", pa.array(docs, pa.string()))
    for name, arr in enc.items():
        table = table.append_column(name, arr)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes(), groups


def encode_pools(kept_path: Path, groups: np.ndarray, pool_dir: Path, template, tokenizer, cfg, progress: bool, desc: str) -> dict[int, Path]:
    """Write every row with ``groups[row] >= 0`` to ``pool_dir/<group>.arrow``, input order kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    pool_dir.mkdir(parents=True, exist_ok=True)
    pf = pq.ParquetFile(kept_path)

    def items() -> Iterator[tuple[Any, np.ndarray]]:
        start = 0
        for b in pf.iter_batches(batch_size=BATCH):
            g = groups[start:start + b.num_rows]
            start += b.num_rows
            keep = np.nonzero(g >= 0)[0]
            if len(keep):
                yield (b if len(keep) == b.num_rows else b.take(pa.array(keep))), g[keep]

    writers: dict[int, Any] = {}
    paths: dict[int, Path] = {}
    opts = pa.ipc.IpcWriteOptions(compression="lz4")
    bar = tqdm(total=int((groups >= 0).sum()), desc=desc, unit="doc", disable=not progress)
    shared = {"template": template, "tokenizer": tokenizer, "cfg": cfg}
    for payload, g in ordered_map(encode_record_batch, items(), cfg.num_proc, shared):
        table = pa.ipc.open_stream(payload).read_all()
        for gid in np.unique(g):
            if gid not in writers:
                paths[gid] = pool_dir / f"{gid}.arrow"
                writers[gid] = pa.ipc.new_stream(str(paths[gid]), table.schema, options=opts)
            sel = table if len(g) == table.num_rows and (g == gid).all() else table.take(pa.array(np.nonzero(g == gid)[0]))
            writers[gid].write_table(sel)
        bar.update(len(g))
    bar.close()
    for w in writers.values():
        w.close()
    return paths


# ---------------------------------------------------------------------------------------------- merging pools
class RowStream:
    """Rows of one pool file, handed out ``k`` at a time across batch boundaries."""

    def __init__(self, path: Path):
        import pyarrow as pa

        self._reader = pa.ipc.open_stream(pa.OSFile(str(path)))
        self._buf: list = []
        self._n = 0

    def take(self, k: int):
        import pyarrow as pa

        while self._n < k:
            try:
                b = self._reader.read_next_batch()
            except StopIteration:
                break
            self._buf.append(b)
            self._n += b.num_rows
        table = pa.Table.from_batches(self._buf, schema=self._reader.schema)
        out, rest = table.slice(0, k), table.slice(k)
        self._buf = rest.to_batches()
        self._n = rest.num_rows
        return out


def merged(pools: list[Path], limit: int | None) -> Iterator[Any]:
    """Pools interleaved round-robin with ``limit`` rows from each, or (``limit`` None) every row of each pool in turn
    (the natural mixture; training shuffles its blocks)."""
    import pyarrow as pa

    streams = [RowStream(p) for p in pools]
    if limit is None:
        for s in streams:
            while True:
                t = s.take(BATCH)
                if t.num_rows == 0:
                    break
                yield t
        return
    remaining = limit
    while remaining > 0:
        k = min(BATCH, remaining)
        parts = [s.take(k) for s in streams]
        if any(p.num_rows < k for p in parts):
            raise RuntimeError("a pool ended before its planned row count")  # a bug, not user input
        order = np.arange(k * len(parts)).reshape(len(parts), k).T.reshape(-1)
        yield pa.concat_tables(parts).take(pa.array(order))
        remaining -= k


# ---------------------------------------------------------------------------------------------- outputs
class BlockPacker:
    """Fixed-length blocks with labels and per-document position_ids (document boundaries), streamed.

    A document longer than a block is cut into block-sized pieces (no other cuts). A piece goes into
    the first of up to ``OPEN_BLOCKS`` open blocks with room; when none has room, the fullest open
    block is closed (padding with id 0, label -100). Closing a block as soon as the next piece does not
    fit left about 43% padding on Reuters-length articles at 512 tokens; ``padding`` reports the share.
    """

    OPEN_BLOCKS = 16

    def __init__(self, path: Path, block_size: int):
        self.path, self.size = path, block_size
        self.open: list[dict[str, Any]] = []  # each: ids, labels, pos (lists of arrays), fill
        self.done_ids: list[np.ndarray] = []
        self.done_labels: list[np.ndarray] = []
        self.done_pos: list[np.ndarray] = []
        self.writer: pq.ParquetWriter | None = None
        self.blocks = 0
        self.real_tokens = 0

    def _close_block(self, b: dict[str, Any]) -> None:
        pad = self.size - b["fill"]
        self.done_ids.append(np.concatenate(b["ids"] + [np.zeros(pad, np.int32)]))
        self.done_labels.append(np.concatenate(b["labels"] + [np.full(pad, -100, np.int32)]))
        self.done_pos.append(np.concatenate(b["pos"] + [np.arange(pad, dtype=np.int32)]))
        if len(self.done_ids) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.done_ids:
            return
        n = len(self.done_ids)
        off = pa.array(np.arange(n + 1, dtype=np.int32) * self.size)
        t = pa.table({k: pa.ListArray.from_arrays(off, pa.array(np.concatenate(v))) for k, v in
                      (("input_ids", self.done_ids), ("labels", self.done_labels), ("position_ids", self.done_pos))})
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, t.schema)
        self.writer.write_table(t)
        self.blocks += n
        self.done_ids, self.done_labels, self.done_pos = [], [], []

    def _place(self, ids: np.ndarray, labels: np.ndarray) -> None:
        n = len(ids)
        b = next((b for b in self.open if b["fill"] + n <= self.size), None)
        if b is None:
            if len(self.open) >= self.OPEN_BLOCKS:
                k = max(range(len(self.open)), key=lambda j: self.open[j]["fill"])
                self._close_block(self.open.pop(k))
            b = {"ids": [], "labels": [], "pos": [], "fill": 0}
            self.open.append(b)
        b["ids"].append(ids)
        b["labels"].append(labels)
        b["pos"].append(np.arange(n, dtype=np.int32))
        b["fill"] += n
        self.real_tokens += n
        if b["fill"] == self.size:
            self.open = [x for x in self.open if x is not b]  # by identity: blocks hold arrays
            self._close_block(b)

    def add(self, table) -> None:
        ids_col, lab_col = table.column("input_ids").combine_chunks(), table.column("labels").combine_chunks()
        flat_i = ids_col.values.to_numpy(zero_copy_only=False)
        flat_l = lab_col.values.to_numpy(zero_copy_only=False).copy()
        off = ids_col.offsets.to_numpy()
        for a, b in zip(off[:-1], off[1:]):
            for s in range(a, b, self.size):
                e = min(s + self.size, b)
                lab = flat_l[s:e].copy()
                lab[0] = -100  # a block never scores a piece's first token: nothing before it in the block belongs to it
                self._place(flat_i[s:e], lab)

    @property
    def padding(self) -> float:
        return 1 - self.real_tokens / (self.blocks * self.size) if self.blocks else 0.0

    def close(self) -> int:
        for b in self.open:
            self._close_block(b)
        self.open = []
        self._flush()
        if self.writer is not None:
            self.writer.close()
        return self.blocks


class SplitWriter:
    """One experiment split as parquet and as a ``save_to_disk`` folder, appended batch by batch."""

    def __init__(self, edir: Path, split: str, block_size: int | None):
        self.edir, self.split = edir, split
        self.pq_path = edir / "parquet" / f"{split}.parquet"
        self.hf_dir = edir / "hf" / split
        self.pq_path.parent.mkdir(parents=True, exist_ok=True)
        self.hf_dir.mkdir(parents=True, exist_ok=True)
        self.pq: pq.ParquetWriter | None = None  # both opened by the first write()
        self.arrow: ArrowWriter | None = None
        self.rows = 0
        self.packer = BlockPacker(edir / "parquet" / f"{split}_blocks.parquet", block_size) if block_size else None

    def write(self, table) -> None:
        import pyarrow.parquet as pq
        from datasets import Features
        from datasets.arrow_writer import ArrowWriter

        if self.pq is None or self.arrow is None:
            self.pq = pq.ParquetWriter(self.pq_path, table.schema)
            self.arrow = ArrowWriter(features=Features.from_arrow_schema(table.schema), path=str(self.hf_dir / "data-00000-of-00001.arrow"))
        self.pq.write_table(table)
        self.arrow.write_table(table)
        if self.packer is not None:
            self.packer.add(table)
        self.rows += table.num_rows

    def close(self) -> None:
        import datasets

        assert self.pq is not None and self.arrow is not None, "write_experiment writes every split it opens (empty splits are not planned)"
        self.pq.close()
        self.arrow.finalize()
        if self.packer is not None:
            self.packer.close()
        # The two JSON files save_to_disk writes beside its shards, from a memory-mapped view (no data read).
        ds = datasets.Dataset.from_file(str(self.hf_dir / "data-00000-of-00001.arrow"))
        st = {k: ds.__dict__[k] for k in ("_fingerprint", "_format_columns", "_format_kwargs", "_format_type", "_output_all_columns")}
        st["_split"] = None
        st["_data_files"] = [{"filename": "data-00000-of-00001.arrow"}]
        (self.hf_dir / "state.json").write_text(json.dumps(st, indent=2, sort_keys=True))
        from dataclasses import asdict

        info = asdict(ds._info)
        (self.hf_dir / "dataset_info.json").write_text(json.dumps({k: info[k] for k in sorted(info)}, indent=2))


def write_experiment(edir: Path, plan: dict[str, tuple[list[Path], int | None]], block_size: int | None) -> float | None:
    """``plan``: split → (pool files, per-pool row limit or None). Writes ``edir/{hf,parquet}``.
    Returns the padding share of the packed training blocks (None without ``block_size``)."""
    if edir.exists():
        shutil.rmtree(edir)
    splits = []
    padding = None
    for split, (pools, limit) in plan.items():
        w = SplitWriter(edir, split, block_size if split == "train" else None)
        for t in merged(pools, limit):
            w.write(t)
        w.close()
        if w.packer is not None:
            padding = w.packer.padding
        splits.append(split)
    (edir / "hf" / "dataset_dict.json").write_text(json.dumps({"splits": splits}))
    return padding
