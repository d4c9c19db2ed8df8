"""The PCFG dataset builder: layout, loss mask, metadata fraction, cache keying, outputs."""

import json

import numpy as np
import pytest
from datasets import load_dataset, load_from_disk

from metacond.data_builders.pcfg import GrammarError, preset_grammar
from metacond.data_builders.pcfg.dataset import PCFGDataConfig, build_pcfg_dataset
from metacond.modeling.tokenizer import metadata_token, pcfg_vocab


def _cfg(tmp_path, **kw):
    base = dict(grammar="small", metadata_depth=3, train_size=400, validation_size=50, test_size=60, bayes_sample=20,
                output_dir=str(tmp_path / "ds"))
    base.update(kw)
    return PCFGDataConfig(**base)


def test_layout_labels_and_metadata(tmp_path):
    dd, out, stats = build_pcfg_dataset(_cfg(tmp_path), progress=False)
    g = preset_grammar("small")
    vocab = pcfg_vocab(g)
    D = g.depth
    tr = dd["train"]
    assert tr.column_names == ["terminals", "metadata", "has_metadata", "input_ids", "labels", "attention_mask", "meta_spans"]
    assert tr[0]["meta_spans"] == [[1 + d, 2 + d] for d in range(D)]
    frac = np.mean(tr["has_metadata"])
    assert 0.4 < frac < 0.6
    for row in tr.select(range(100)):
        ids, labels, j = row["input_ids"], row["labels"], row["metadata"]
        n = len(row["terminals"])
        assert len(ids) == len(labels) == len(row["attention_mask"]) == n + D + 2
        assert ids[0] == vocab["<bos>"] and ids[-1] == vocab["<eos>"]
        for d in range(D):
            want = vocab[metadata_token(d, j[d])] if (row["has_metadata"] and d < 3) else vocab["<mask>"]
            assert ids[1 + d] == want
        assert labels[: 1 + D] == [-100] * (1 + D)
        assert labels[1 + D:] == ids[1 + D:]
        assert ids[1 + D:-1] == [vocab[g.terminals[t]] for t in row["terminals"]]
    assert stats["bayes"]["loss_with_metadata"] < stats["bayes"]["loss_no_metadata"]
    assert stats["bayes"]["accepted_fraction"] == 1.0
    # Outputs: save_to_disk, parquet loadable without scripts, grammar, tokenizer, card.
    assert load_from_disk(str(out / "hf"))["test"].num_rows == 60
    pq = load_dataset("parquet", data_files={"test": str(out / "parquet" / "test.parquet")})["test"]
    assert pq["input_ids"][:5] == dd["test"]["input_ids"][:5]
    assert (out / "grammar.json").exists() and (out / "tokenizer" / "tokenizer.json").exists()
    card = (out / "README.md").read_text()
    assert card.startswith("---") and "configs:" in card and "parquet/train.parquet" in card


def test_no_metadata_depth_means_all_masks(tmp_path):
    dd, _, _ = build_pcfg_dataset(_cfg(tmp_path, metadata_depth=0, train_size=50), progress=False)
    vocab = pcfg_vocab(preset_grammar("small"))
    assert not any(dd["train"]["has_metadata"])
    assert all(ids[1:6] == [vocab["<mask>"]] * 5 for ids in dd["train"]["input_ids"])


def test_cache_is_keyed_by_config_and_grammar(tmp_path):
    cfg = _cfg(tmp_path, output_dir=None)
    _, out1, s1 = build_pcfg_dataset(cfg, progress=False)
    _, out2, s2 = build_pcfg_dataset(cfg, progress=False)
    assert out1 == out2 and not s1["cached"] and s2["cached"]
    _, out3, s3 = build_pcfg_dataset(_cfg(tmp_path, output_dir=None, metadata_fraction=0.25), progress=False)
    _, out4, _ = build_pcfg_dataset(_cfg(tmp_path, output_dir=None, grammar_seed=5), progress=False)
    assert len({out1, out3, out4}) == 3 and not s3["cached"]
    # Same output dir, different config: refuse rather than serve stale data.
    build_pcfg_dataset(_cfg(tmp_path), progress=False)
    with pytest.raises(GrammarError, match="another config"):
        build_pcfg_dataset(_cfg(tmp_path, seed=9), progress=False)
    info = json.loads((tmp_path / "ds" / "metacond_build.json").read_text())
    assert info["config"]["seed"] == 0


def test_data_identical_across_num_proc(tmp_path):
    a, _, _ = build_pcfg_dataset(_cfg(tmp_path, output_dir=str(tmp_path / "a"), train_size=3000, num_proc=1), progress=False)
    b, _, _ = build_pcfg_dataset(_cfg(tmp_path, output_dir=str(tmp_path / "b"), train_size=3000, num_proc=2), progress=False)
    assert a["train"]["input_ids"] == b["train"]["input_ids"]


@pytest.mark.parametrize("kw,msg", [
    (dict(metadata_depth=6), "exceeds the grammar depth D=5"),
    (dict(train_size=-1), "train_size must be >= 0"),
    (dict(metadata_fraction=1.5), r"metadata_fraction must be in \[0, 1\]"),
    (dict(grammar="nope"), "neither a grammar preset"),
])
def test_impossible_settings(tmp_path, kw, msg):
    with pytest.raises(GrammarError, match=msg):
        build_pcfg_dataset(_cfg(tmp_path, **kw), progress=False)
