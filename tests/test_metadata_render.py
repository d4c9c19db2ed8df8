"""One metadata renderer: URL styles, and the same bytes in training documents, MCQ contexts and perplexity contexts."""

import json

import pytest

from metacond import MetacondError
from metacond.data_builders.news import geo, metadata
from metacond.eval_tasks.localnews import utils as u

URL = "https://WWW.Example.COM:8080/News/Story-1?id=7"


def test_url_styles():
    assert metadata.render_url(URL, "host") == "example.com"
    assert metadata.render_url(URL, "meco") == "WWW.Example.COM:8080"  # MeCo: scheme stripped, cut at the first '/', nothing else
    assert metadata.render_url(URL, "full") == URL
    assert metadata.render_url("bbc.co.uk/news/x", "meco") == "bbc.co.uk"
    assert metadata.render_url("", "meco") == ""
    with pytest.raises(MetacondError, match="unknown url_style"):
        metadata.render_url(URL, "short")


def test_values_derive_the_continent_from_the_country():
    # The gold release labels Jamaica "North America": the country decides, and a row without a URL gets its first outlet.
    v = metadata.metadata_values({"country": "Jamaica", "continent": "North America"})
    assert v == {"url": "jamaica-gleaner.com", "country": "jm", "continent": "america"}
    assert metadata.metadata_values({"country": "ca", "source_url": URL, "url": "example.com/news/story-1"}, "full")["url"] == URL
    assert metadata.metadata_block({"country": "Kenya", "url": "https://www.nation.africa/x"}, "url_country") == "URL: nation.africa\nCOUNTRY: ke\n\n"
    with pytest.raises(MetacondError, match="unknown country"):
        metadata.metadata_values({"country": "Atlantis"})


def test_published_rows_with_non_canonical_continents_load(tmp_path):
    rows = [{"question": "Which paper?", "options": ["A1", "B1", "C1", "D1"], "correct_answer": "A1", "distractors": ["B1", "C1", "D1"],
             "country": c, "continent": cont, "generated_by": "fixture"} for c, cont in
            (("Jamaica", "North America"), ("Canada", "North America"), ("Nigeria", "Africa"), ("France", "europe"), ("Australia", "oceania"))]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ok, problems = u.load_questions(tmp_path / "q.jsonl")
    assert [(r["country_code"], r["continent"], r["continent_given"]) for r in ok] == [
        ("jm", "america", "North America"), ("ca", "america", "North America"), ("ng", "africa", "Africa"), ("fr", "europe", "europe")]
    assert len(problems) == 1 and "outside the study's continents" in problems[0]


@pytest.fixture(scope="module", params=["host", "meco", "full"])
def build(request, tmp_path_factory):
    """A news build in one URL style, and one published-format question per test article with the URL the MCQ builders store."""
    import pyarrow.parquet as pq
    from news_fixture import write_fixture

    from metacond.data_builders.news.builder import NewsBuildConfig, build_news

    d = tmp_path_factory.mktemp(f"render-{request.param}")
    write_fixture(d / "news.jsonl", per_country=4)
    build_news(NewsBuildConfig(input=str(d / "news.jsonl"), output_dir=str(d / "news"), experiments=["global"], templates=["full", "url_country"],
                               vocab_size=400, test_fraction=0.4, url_style=request.param), progress=False)
    arts = pq.read_table(d / "news" / "global" / "full" / "parquet" / "test.parquet").to_pylist()
    with open(d / "q.jsonl", "w") as f:
        for i, a in enumerate(arts):
            opts = [f"answer {i}", f"other {i} a", f"other {i} b", f"other {i} c"]
            f.write(json.dumps({"question": f"What happened in story {i}?", "options": opts, "correct_answer": opts[0], "distractors": opts[1:],
                                "country": geo.countries()[a["country"]].name, "continent": a["continent"], "generated_by": "fixture",
                                "url": metadata.article_url(a)}) + "\n")  # what mcq.py / mcq_llm.py store
    return request.param, d


def test_mcq_and_perplexity_contexts_are_the_training_bytes(build):
    import pyarrow.parquet as pq

    style, d = build
    for template in ("full", "url_country"):
        arts = pq.read_table(d / "news" / "global" / template / "parquet" / "test.parquet").to_pylist()
        doc_block = {a["source_url"]: a["document"][: a["document"].index("TITLE: ")] for a in arts}
        assert all(b.startswith("URL: ") for b in doc_block.values())
        if style == "meco":
            assert all(b.startswith("URL: www.") for b in doc_block.values())  # the outlet's www. is kept
        questions, _ = u.load_questions(d / "q.jsonl", strict=True)
        assert questions
        for q in questions:
            block = doc_block[q["url"]]
            assert u.context_for(q, template, style).encode() == (block + f"Question: {q['question']}\nAnswer:").encode()
            assert u.gen_prompt(q, template, style).startswith(block)
        for a in arts:
            ctx, cont, article = u.split_article(a, template, style)
            assert (ctx + cont).encode() == a["document"].encode() and (ctx + cont).startswith(doc_block[a["source_url"]])


def test_sft_prefix_is_the_training_block(build):
    import pyarrow.parquet as pq

    from metacond.training.sft import metadata_block as sft_block

    style, d = build
    a = pq.read_table(d / "news" / "global" / "full" / "parquet" / "train.parquet").to_pylist()[0]
    assert sft_block(a, "full", style) == a["document"][: a["document"].index("TITLE: ")]
