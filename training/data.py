"""Loading builder outputs for training, checking them, and ordering them into a scheduled stream."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from metacond import MetacondError
from metacond.modeling.summary import BuildManifest

from .schedule import MetadataSchedule

REQUIRED = ("input_ids", "labels", "attention_mask")


@dataclass
class LoadedData:
    train: Any
    eval: Any | None
    info: BuildManifest | None  # the builder's metacond_build.json (None for foreign datasets)
    tokenizer_dir: Path | None
    source: str


def load_training_data(path: str | None, train_split: str = "train", eval_split: str | None = "validation",
                       streaming: bool = False, dataset_config: str | None = None) -> LoadedData:
    """A builder output directory, a ``save_to_disk`` directory, a parquet/JSONL file, or a Hub dataset name."""
    import datasets

    if not path:
        raise MetacondError("no dataset given: set 'dataset' (a builder output, file or Hub name) or the pcfg_* options")
    p = Path(path)
    info: BuildManifest | None = None
    tok_dir = None
    if p.is_dir():
        if BuildManifest.exists(p):
            info = BuildManifest.load(p)
            tok_dir = p / "tokenizer" if (p / "tokenizer").is_dir() else None
        hf_dir = p / "hf" if (p / "hf").is_dir() else p
        parquet_dir = p / "parquet"
        if streaming and parquet_dir.is_dir():
            files = {s.stem: str(s) for s in parquet_dir.glob("*.parquet")}
            dd = datasets.load_dataset("parquet", data_files=files, streaming=True)
        else:
            try:
                dd = datasets.load_from_disk(str(hf_dir))
            except FileNotFoundError:
                raise MetacondError(f"{p} is neither a metacond build nor a save_to_disk dataset") from None
            if streaming:
                dd = datasets.IterableDatasetDict({k: v.to_iterable_dataset() for k, v in dd.items()}) if isinstance(dd, datasets.DatasetDict) else dd.to_iterable_dataset()
    elif p.suffix in (".parquet", ".jsonl", ".json", ".csv"):
        if not p.is_file():
            raise MetacondError(f"dataset file {str(p)!r} does not exist")
        kind = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}[p.suffix]
        if _file_is_empty(p):
            raise MetacondError(f"dataset {path!r} split {train_split!r} is empty")
        try:
            dd = datasets.load_dataset(kind, data_files={train_split: str(p)}, streaming=streaming)
        except Exception as e:  # datasets wraps reader errors; report the root cause on one line
            cause = e.__cause__ or e.__context__ or e
            raise MetacondError(f"could not read {path!r}: {str(cause).splitlines()[0] if str(cause) else type(cause).__name__}") from None
    elif p.exists() or "/" not in path or path.startswith((".", "/")):
        raise MetacondError(f"dataset {path!r} not found (expected a builder output directory, a data file, or a Hub name like user/name)")
    else:
        try:
            dd = datasets.load_dataset(path, dataset_config, streaming=streaming)
        except Exception as e:  # the Hub client raises many types; one line is what the user needs
            raise MetacondError(f"could not load dataset {path!r} from the Hub: {str(e).splitlines()[0]}") from None
    if not isinstance(dd, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        dd = {train_split: dd}
    if train_split not in dd:
        raise MetacondError(f"dataset {path!r} has no split {train_split!r} (splits: {', '.join(dd)})")
    train = dd[train_split]
    ev = dd[eval_split] if eval_split and eval_split in dd else None
    for name, ds in (("train", train), ("eval", ev)):
        if ds is not None:
            check_columns(ds, f"{path} [{name}]")
    if not streaming and len(train) == 0:
        raise MetacondError(f"dataset {path!r} split {train_split!r} is empty")
    return LoadedData(train, ev, info, tok_dir, str(path))


def _file_is_empty(p: Path) -> bool:
    if p.stat().st_size == 0:
        return True
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(p).metadata.num_rows == 0
        except Exception:
            return False
    if p.suffix == ".jsonl":
        with open(p) as f:
            return not any(line.strip() for line in f)
    return False


def check_columns(ds, where: str, probe: int = 256) -> None:
    cols = ds.column_names or (list(ds.features) if getattr(ds, "features", None) else None)
    if cols is not None:
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise MetacondError(f"{where} lacks column(s) {', '.join(missing)}; training needs {', '.join(REQUIRED)} "
                                f"(build data with a metacond builder), found {', '.join(cols)}")
    rows = ds.take(probe) if hasattr(ds, "take") and not hasattr(ds, "__len__") else ds.select(range(min(probe, len(ds))))
    for i, row in enumerate(rows):
        if not (len(row["input_ids"]) == len(row["labels"]) == len(row["attention_mask"])):
            raise MetacondError(f"{where} row {i}: labels ({len(row['labels'])}) / attention_mask ({len(row['attention_mask'])}) "
                                f"not aligned with input_ids ({len(row['input_ids'])})")
        if len(row["input_ids"]) == 0:
            raise MetacondError(f"{where} row {i} is empty")


class ScheduledDataset(torch.utils.data.Dataset):
    """Position ``p`` of the run's global example stream -> a (shuffled, scheduled) example.

    Epoch ``e`` visits the base dataset in a permutation seeded by ``(seed, e)``; the trainer reads
    positions in order, so the data order is a pure function of the seed and survives resumes.
    """

    def __init__(self, base, schedule: MetadataSchedule, total_examples: int, seed: int = 0, shuffle: bool = True):
        self.base = base
        self.schedule = schedule
        self.total = int(total_examples)
        self.seed = seed
        self.shuffle = shuffle
        self._perm: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.total

    def index(self, position: int) -> int:
        epoch, r = divmod(position, len(self.base))
        if not self.shuffle:
            return r
        if epoch not in self._perm:
            self._perm = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.base))}
        return int(self._perm[epoch][r])

    def __getitem__(self, position: int) -> dict[str, Any]:
        if not 0 <= position < self.total:
            raise IndexError(position)
        return self.schedule.apply(self.base[self.index(position)], position)


class ScheduledIterable(torch.utils.data.IterableDataset):
    """Streaming counterpart: positions count examples as they stream; epochs reshuffle the stream."""

    def __init__(self, base, schedule: MetadataSchedule, total_examples: int, seed: int = 0, buffer_size: int = 10_000):
        self.base = base
        self.schedule = schedule
        self.total = int(total_examples)
        self.seed = seed
        self.buffer_size = buffer_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        pos, epoch = 0, 0
        while pos < self.total:
            stream = self.base.shuffle(seed=self.seed + epoch, buffer_size=self.buffer_size)
            empty = True
            for ex in stream:
                empty = False
                yield self.schedule.apply(ex, pos)
                pos += 1
                if pos >= self.total:
                    return
            if empty:
                raise MetacondError("the streamed dataset is empty")
            epoch += 1
