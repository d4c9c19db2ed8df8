"""localnews_ppl: per-continent perplexity with the metadata block as context, never scored."""


import pytest
import torch

from metacond.eval_tasks import TASK_DIR
from metacond.eval_tasks.localnews import utils as u

TASKS = TASK_DIR / "localnews"



@pytest.fixture(scope="module")
def news(tmp_path_factory):
    from news_fixture import small_build

    return small_build(tmp_path_factory.mktemp("ppl"), per_country=6)


def test_changing_only_metadata_leaves_scored_tokens_unchanged(news):
    from datasets import Dataset
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(news / "tokenizer")
    rows = Dataset.from_parquet(str(news / "global" / "full" / "parquet" / "test.parquet")).to_list()[:10]
    for r in rows:
        other = "ie" if r["country"] != "ie" else "ke"  # another country, continent and outlet: only the metadata text changes
        variants = [dict(r), {**r, "country": other, "source_url": "https://www.another-outlet.example.com/x", "url": None, "short_url": None}]
        articles, body_tokens, scored = set(), set(), {}
        for v in variants:
            for cond in ("none", "country", "continent", "url", "full"):
                ctx, cont, article = u.split_article(v, cond)
                assert not ctx.endswith((" ", "\n")) and cont.endswith(article)
                articles.add(article)
                whole = tok(ctx + cont, add_special_tokens=False)["input_ids"]
                ctx_ids = tok(ctx, add_special_tokens=False)["input_ids"] if ctx else []
                assert whole[: len(ctx_ids)] == ctx_ids  # the context tokenizes the same alone
                cont_ids = whole[len(ctx_ids):]
                body_tokens.add(tuple(cont_ids))
                scored.setdefault(cond, set()).add(len(cont_ids))
                # The metadata block, its closing blank line (masked in pretraining) and the article's marker are context.
                assert ctx.endswith(("TITLE:", "CONTENT:")) and cont.startswith(" ")
        # Every condition scores the same article tokens: the metadata text never reaches the scored continuation.
        assert len(articles) == 1 and len(body_tokens) == 1, r["doc_id"]
        assert len({n for v in scored.values() for n in v}) == 1


def test_lmeval_perplexity_matches_direct_computation(news):
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    from metacond.modeling.checkpoint import build_model

    tok = AutoTokenizer.from_pretrained(news / "tokenizer")
    model = build_model("tiny", tok, seed=0, max_position_embeddings=4096)
    data = str(news / "global" / "full" / "parquet" / "test.parquet")
    tm = TaskManager(include_defaults=False, include_path=str(TASKS), metadata={"data_file": data, "max_body_bytes": 3840})
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=8, add_bos_token=True, max_length=4096)
    res = lm_eval.simple_evaluate(model=lm, tasks=["localnews_ppl_full_asia", "localnews_ppl_none_asia"], task_manager=tm, bootstrap_iters=0)
    import math

    def direct(condition: str) -> float:
        """Bits per byte computed by hand: <bos> + context, then the body; only body tokens scored. With no metadata
        the context is empty and the body follows <bos> directly (lm-eval < 0.4.10 added a second <bos> here)."""
        total_ll, total_bytes = 0.0, 0
        with torch.no_grad():
            for d in u.load_articles(data, condition=condition, continent="asia", max_body_bytes=3840)["test"]:
                ctx = [tok.bos_token_id] + (tok(d["context"], add_special_tokens=False)["input_ids"] if d["context"] else [])
                body = tok(d["context"] + d["body"], add_special_tokens=False)["input_ids"][len(ctx) - 1:]
                assert not d["context"].endswith(("\n", " "))
                ids = torch.tensor([ctx + body])
                lp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1).gather(-1, ids[0, 1:, None])[:, 0]
                total_ll += lp[len(ctx) - 1:].sum().item()
                total_bytes += d["body_bytes"]
        return -total_ll / total_bytes / math.log(2)

    full, none = direct("full"), direct("none")
    assert res["results"]["localnews_ppl_full_asia"]["bits_per_byte,none"] == pytest.approx(full, rel=1e-3)
    assert res["results"]["localnews_ppl_none_asia"]["bits_per_byte,none"] == pytest.approx(none, rel=1e-3)
    assert none != pytest.approx(full, rel=1e-6)


def test_long_articles_are_cut_to_the_byte_budget(tmp_path):
    """The harness cannot score a continuation longer than the context: bodies are cut at a word, in bytes."""
    import json

    text = " ".join(["naïve café"] * 2000)  # multi-byte characters
    (tmp_path / "a.jsonl").write_text(json.dumps({"url": "dawn.com/x", "country": "pk", "continent": "asia", "title": "T", "text": text}) + "\n")
    doc = u.load_articles(str(tmp_path / "a.jsonl"), condition="full", max_body_bytes=500)["test"][0]
    assert doc["body_bytes"] <= 500 and doc["body"].endswith("café") and doc["context"].startswith("URL: dawn.com")
    full = u.load_articles(str(tmp_path / "a.jsonl"), condition="full", max_body_bytes=0)["test"][0]
    assert full["body_bytes"] == len(f" T\n\nCONTENT: {text}".encode())  # 0: no cut; the "TITLE:" marker is context
