from transformers import AutoTokenizer

from metacond.data_builders.pcfg import preset_grammar
from metacond.modeling.tokenizer import build_pcfg_tokenizer, metadata_token, pcfg_vocab


def test_round_trip_through_auto_tokenizer(tmp_path):
    g = preset_grammar("small")
    tok = build_pcfg_tokenizer(g)
    vocab = pcfg_vocab(g)
    assert len(tok) == len(vocab) == 4 + sum(g.num_variants) + len(g.terminals)
    tok.save_pretrained(tmp_path)
    t2 = AutoTokenizer.from_pretrained(tmp_path)
    text = f"{metadata_token(0, 1)} <mask> <mask> <mask> <mask> t0 t3 t1"
    ids = t2(text)["input_ids"]
    assert ids[0] == t2.bos_token_id and ids == tok(text)["input_ids"]
    assert ids[1] == vocab[metadata_token(0, 1)] and ids[-1] == vocab["t1"]
    # Metadata tokens are ordinary tokens: they survive skip_special_tokens.
    assert t2.decode(ids, skip_special_tokens=True) == text.replace("<mask> ", "")
    assert (t2.pad_token, t2.eos_token, t2.mask_token) == ("<pad>", "<eos>", "<mask>")
    assert t2.model_max_length >= 2 + g.depth + 100
