"""A small news-style corpus written in code: country-flavoured articles behind a metadata block."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COUNTRIES = {
    "ng": ("nigeria", "africa", ["lagos", "abuja", "naira", "kano"]),
    "ke": ("kenya", "africa", ["nairobi", "mombasa", "shilling", "kisumu"]),
    "in": ("india", "asia", ["delhi", "mumbai", "rupee", "chennai"]),
    "gb": ("united kingdom", "europe", ["london", "manchester", "pound", "leeds"]),
    "us": ("united states", "america", ["chicago", "boston", "dollar", "denver"]),
}
VERBS = ["announced", "reported", "opened", "closed", "expanded", "reviewed"]
NOUNS = ["market", "council", "bank", "school", "port", "hospital", "festival"]


def articles(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    codes = list(COUNTRIES)
    for i in range(n):
        c = codes[i % len(codes)]
        _, cont, words = COUNTRIES[c]
        sents = []
        for _ in range(int(rng.integers(2, 5))):
            sents.append(f"the {rng.choice(NOUNS)} in {rng.choice(words)} {rng.choice(VERBS)} new plans for the {rng.choice(words)} {rng.choice(NOUNS)}.")
        yield {"url": f"https://www.news-{c}.example/{i}", "country": c, "continent": cont, "text": " ".join(sents)}


def build_news_fixture(out: Path, n_train: int = 300, n_val: int = 40) -> Path:
    from datasets import Dataset, DatasetDict

    from metacond.data_builders.news.encode import encode_batch
    from metacond.data_builders.news.templates import Template
    from metacond.modeling.tokenizer import build_text_tokenizer

    rows = list(articles(n_train + n_val))
    tok = build_text_tokenizer([r["text"] for r in rows] + [f"URL: {r['url']}\nCOUNTRY: {r['country']}\nCONTINENT: {r['continent']}\n" for r in rows],
                               vocab_size=400, model_max_length=512)

    template = Template("full")

    def enc(r):
        doc, spans, end = template.render({"url": r["url"].split("//")[1].split("/")[0], "country": r["country"], "continent": r["continent"]}, None, r["text"])
        return {**r, **{k: v[0] for k, v in encode_batch(tok, [doc], [spans], [end]).items()}}

    dd = DatasetDict({"train": Dataset.from_list([enc(r) for r in rows[:n_train]]),
                      "validation": Dataset.from_list([enc(r) for r in rows[n_train:]])})
    out.mkdir(parents=True, exist_ok=True)
    dd.save_to_disk(str(out / "hf"))
    tok.save_pretrained(str(out / "tokenizer"))
    (out / "metacond_build.json").write_text(json.dumps({"key": "news-fixture", "metadata_mode": "remove", "template": "full"}))
    return out
