"""Builder output trains a real tiny LlamaForCausalLM: the loss mask and vocabulary line up."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from metacond.data_builders.pcfg.dataset import PCFGDataConfig, build_pcfg_dataset


def test_tiny_llama_learns_pcfg_sequences(tmp_path):
    dd, out, stats = build_pcfg_dataset(PCFGDataConfig(grammar="small", metadata_depth=3, train_size=256, validation_size=8,
                                                       test_size=32, bayes_sample=0, output_dir=str(tmp_path / "ds")), progress=False)
    tok = AutoTokenizer.from_pretrained(out / "tokenizer")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, max_position_embeddings=256, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def batch(rows):
        L = max(len(r) for r in rows["input_ids"])
        pad = lambda seqs, v: torch.tensor([s + [v] * (L - len(s)) for s in seqs])  # noqa: E731
        return pad(rows["input_ids"], tok.pad_token_id), pad(rows["labels"], -100), pad(rows["attention_mask"], 0)

    test_ids, test_labels, test_mask = batch(dd["test"][:32])

    def eval_loss():
        with torch.no_grad():
            return model(input_ids=test_ids, labels=test_labels, attention_mask=test_mask).loss.item()

    before = eval_loss()
    first = [p.detach().clone() for p in model.parameters()]
    tr = dd["train"].shuffle(seed=0)
    for step in range(30):
        ids, labels, mask = batch(tr[(step * 16) % 256:(step * 16) % 256 + 16])
        loss = model(input_ids=ids, labels=labels, attention_mask=mask).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    after = eval_loss()
    assert after < before - 0.3, (before, after)
    assert all(not torch.equal(a, b) for a, b in zip(first, model.parameters()))
    model.save_pretrained(tmp_path / "m")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=test_ids[:2]).logits, model(input_ids=test_ids[:2]).logits)
