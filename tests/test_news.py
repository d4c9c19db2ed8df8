"""The news builder on fixtures the tests write: resolution, cleaning, splits, experiments, templates, masks."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from news_fixture import OUTLET, PAPER, article, write_fixture

from metacond import MetacondError
from metacond.data_builders.news import geo
from metacond.data_builders.news.builder import NewsBuildConfig, build_news
from metacond.data_builders.news.encode import encode_batch
from metacond.data_builders.news.templates import TEMPLATES, Template


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("news")
    write_fixture(d / "news.jsonl")
    cfg = NewsBuildConfig(input=str(d / "news.jsonl"), regions="paper17", templates=["full", "none", "url_country"], output_dir=str(d / "out"),
                          vocab_size=600, test_fraction=0.2, validation_fraction=0.1, block_size=128)
    return build_news(cfg, progress=False), d / "out"


def test_every_row_is_kept_or_counted(built):
    rep, out = built
    c = rep["counts"]
    assert c["input_rows"] == 17 * 12 + 12
    assert c["kept"] + sum(rep["dropped"].values()) - c.get("bad_json_line", 0) == c["input_rows"]
    assert c["bad_json_line"] == 1
    for reason, n in {"international_outlet": 1, "unresolved_domain": 1, "malformed_url": 1, "missing_url": 1, "outside_regions": 1, "duplicate": 1,
                      "too_short": 1, "too_long": 1, "empty_text": 1, "non_string_text": 1, "non_string_url": 1}.items():
        assert c[reason] == n, (reason, c)
    assert rep["country_source"] == {"outlet_table": 17 * 12, "cctld": 1}
    assert rep["per_country"]["ng"] == 13 and set(rep["per_country"]) == set(OUTLET)
    assert (out / "composition.png").stat().st_size > 3000
    card = (out / "README.md").read_text()
    assert "configs:" in card and "region--africa--full" in card and "| international_outlet | 1 |" in card


def test_splits_experiments_and_balance(built):
    rep, out = built
    from datasets import load_from_disk

    g = load_from_disk(str(out / "global" / "full" / "hf"))
    test_cont = g["test"]["continent"]
    assert len(set(test_cont)) == 4 and len(set(np.unique(test_cont, return_counts=True)[1])) == 1  # balanced test
    tr = g["train"]["continent"]
    counts = np.unique(tr, return_counts=True)[1]
    assert len(set(counts)) == 1 and tr[:4] != tr[1:5]  # equal per continent, interleaved
    for c in PAPER:
        r = load_from_disk(str(out / "region" / c / "full" / "hf"))
        assert set(r["train"]["continent"]) == {c}
        loo = load_from_disk(str(out / "leave-one-out" / c / "full" / "hf"))
        assert c not in set(loo["train"]["continent"]) and len(set(loo["train"]["continent"])) == 3
    # No document is in two splits; the split is a function of the URL alone.
    ids = {s: set(g[s]["doc_id"]) for s in g}
    assert not (ids["train"] & ids["test"]) and not (ids["validation"] & ids["test"])
    info = json.loads((out / "global" / "full" / "metacond_build.json").read_text())
    assert info["metadata_mode"] == "remove" and info["fields"] == ["url", "country", "continent"]


def test_templates_and_masks(built):
    rep, out = built
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out / "tokenizer")
    full = load_from_disk(str(out / "global" / "full" / "hf"))["train"][0]
    assert full["document"].startswith(f"URL: {full['short_url']}\nCOUNTRY: {full['country']}\nCONTINENT: {full['continent']}\n\nTITLE: ")
    k = next(i for i, l in enumerate(full["labels"]) if l != -100)
    assert tok.decode(full["input_ids"][1:k]) == full["document"].split("TITLE:")[0]
    assert len(full["meta_spans"]) == 3 and full["meta_spans"][-1][1] == k
    none = load_from_disk(str(out / "global" / "none" / "hf"))["train"][0]
    assert none["document"].startswith("TITLE: ") and none["meta_spans"] == [] and none["labels"][1] != -100
    uc = load_from_disk(str(out / "global" / "url_country" / "hf"))["train"][0]
    assert "CONTINENT" not in uc["document"].split("TITLE:")[0] and len(uc["meta_spans"]) == 2
    blocks = __import__("pandas").read_parquet(out / "global" / "full" / "parquet" / "train_blocks.parquet")
    assert all(len(x) == 128 for x in blocks["input_ids"])


def test_wrong_column_and_bad_settings(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps({"link": "https://dawn.com/a", "body": "x" * 300}) + "\n")
    with pytest.raises(MetacondError, match=r"no column 'text'.*--text_column"):
        build_news(NewsBuildConfig(input=str(p), output_dir=str(tmp_path / "o")), progress=False)
    with pytest.raises(MetacondError, match="unknown country 'Atlantis'"):
        build_news(NewsBuildConfig(input=str(p), regions="ng,Atlantis", output_dir=str(tmp_path / "o")), progress=False)
    with pytest.raises(MetacondError, match="must be a lower-case column name"):
        NewsBuildConfig(input=str(p), templates=["Fancy!"])
    with pytest.raises(MetacondError, match="unknown template"):
        NewsBuildConfig(input=str(p), templates=["country,,x"])
    with pytest.raises(MetacondError, match=r"no column 'fancy' for the metadata field"):
        build_news(NewsBuildConfig(input=str(p), url_column="link", text_column="body", templates=["fancy"], output_dir=str(tmp_path / "o")),
                   progress=False)
    with pytest.raises(MetacondError, match="no such file: '.*nope.jsonl'"):
        build_news(NewsBuildConfig(input=str(tmp_path / "nope.jsonl")), progress=False)
    with pytest.raises(MetacondError, match="no file matches"):
        build_news(NewsBuildConfig(input=str(tmp_path / "shard-*.jsonl.gz")), progress=False)


def test_regions_take_codes_names_continents_and_presets():
    from metacond.data_builders.news.builder import selected_countries

    asia = selected_countries("asia")
    assert {"jp", "in", "cn"} <= asia and not asia & {"ng", "us", "gb"} and all(geo.continent_of(c) == "asia" for c in asia)
    assert selected_countries("Asia,ng") == asia | {"ng"} and selected_countries("NG, Japan") == {"ng", "jp"}
    assert selected_countries("paper17") < selected_countries("paper17,oceania") and selected_countries("all") is None


def test_country_resolution_units():
    assert geo.country_code("Nigeria") == "ng" and geo.country_code("NGA") == "ng" and geo.country_code("UK") == "gb"
    assert geo.country_code("Atlantis") is None
    assert geo.resolve(geo.parse_url("https://news.bbc.co.uk/x")) == ("gb", "outlet_table")
    assert geo.resolve(geo.parse_url("http://www.somepaper.co.ke/a?b=1")) == ("ke", "cctld")
    assert geo.resolve(geo.parse_url("https://startup.io/x")) == (None, "unresolved_domain")  # vanity ccTLD
    assert geo.resolve(geo.parse_url("https://x.example.com"), "Ghana") == ("gh", "column")
    assert geo.resolve(geo.parse_url("https://x.example.com"), None, {"example.com": "tz"}) == ("tz", "user_map")
    assert geo.parse_url("https://www.Dawn.com/news/1/") .normalized == "dawn.com/news/1"
    for bad in ("", "   ", "http://", "no-dot", "https://exa mple.com", 7):
        assert geo.parse_url(bad) is None
    assert geo.continent_of("jm") == "america" and geo.continent_of("hk") == "asia"


@pytest.fixture(scope="module")
def tokenizer():
    from metacond.modeling.tokenizer import build_text_tokenizer

    return build_text_tokenizer(["URL: a.com\nCOUNTRY: ng\nCONTINENT: africa\n\nCONTENT: some text here é ü 中文"] * 20, vocab_size=500)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.lists(st.sampled_from(["url", "country", "continent"]), unique=True),
       line=st.sampled_from(["{NAME}: {value}\n", "[{name}={value}] ", "{value}|", "<{NAME}>{value}</{NAME}>\n"]),
       sep=st.sampled_from(["\n", "", " ", "\n\n", "::"]),
       text=st.text(min_size=1, max_size=80), title=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
       value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12))
def test_mask_covers_exactly_the_metadata_block(tokenizer, fields, line, sep, text, title, value):
    t = Template(name="custom", fields=tuple(fields), line_format=line, separator=sep)
    doc, spans, end = t.render({"url": value, "country": value[::-1], "continent": "asia"}, title, text)
    enc = encode_batch(tokenizer, [doc], [spans], [end])
    ids, labels = enc["input_ids"][0], enc["labels"][0]
    offs = tokenizer(doc, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for (s, e), lab in zip(offs, labels[1:-1]):
        if s < end:
            assert lab == -100  # every token touching the block (also one merged across the boundary) is masked
        else:
            assert lab != -100  # every token wholly in the body is scored
    assert labels[-1] == tokenizer.eos_token_id and labels[0] == -100
    # Field spans are contiguous, ordered and end at the first scored token (or the eos).
    first_scored = next(i for i, l in enumerate(labels) if l != -100)
    ms = enc["meta_spans"][0]
    if spans:
        assert ms[0][0] == 1 and ms[-1][1] == first_scored
        for a, b in zip(ms, ms[1:]):
            assert a[1] == b[0]
    # The scored tokens decode to the body, byte for byte when no token straddles the boundary.
    if all(not (s < end < e) for s, e in offs):
        assert tokenizer.decode(ids[first_scored:-1]) == doc[end:]


def test_news_build_trains_with_metacond_pretrain(built, tmp_path):
    rep, out = built
    from metacond.training.pretrain import parse_args, run_pretraining

    a = parse_args(["--dataset", str(out / "global" / "full"), "--output_dir", str(tmp_path / "m"), "--model_size", "tiny", "--max_steps", "12",
                    "--per_device_train_batch_size", "4", "--learning_rate", "3e-3", "--packing", "true", "--cooldown_fraction", "0.25",
                    "--logging_steps", "4", "--disable_tqdm", "true", "--plot", "false"])
    res = run_pretraining(a)
    s = res["summary"]
    assert s.metadata_scheme["mode"] == "remove"
    by = s.metadata_scheme["examples_with_metadata_by_step"]
    assert all(m == 4 for st_, m, _ in by if st_ <= 9) and all(m == 0 for st_, m, _ in by if st_ > 9)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_every_named_template_renders_its_fields(name):
    t = Template(name)
    doc, spans, end = t.render({"url": "dawn.com", "country": "pk", "continent": "asia"}, "A title", "Body text.")
    assert len(spans) == len(TEMPLATES[name])
    for f in TEMPLATES[name]:
        assert f"{f.upper()}: " in doc[:end]
    assert doc[end:] == "TITLE: A title\n\nCONTENT: Body text." and (end == 0) == (name == "none")
    assert t.render({"url": "u", "country": "c", "continent": "k"}, None, "B")[0].endswith("\nCONTENT: B") or name == "none"


def test_build_time_field_dropout_and_hub_input(tmp_path, monkeypatch):
    import datasets

    rng = np.random.default_rng(1)
    rows = [{"url": f"https://www.{OUTLET[c]}/x/{i}", "title": "t", "text": article(rng, c)} for c in ("ng", "in", "us", "gb") for i in range(25)]
    calls = []

    def fake_load_dataset(name, config=None, split=None, streaming=False, **kw):
        calls.append((name, config, split, streaming))
        return datasets.Dataset.from_list(rows).to_iterable_dataset()

    cfg = NewsBuildConfig(input="someuser/cc-news-sample", output_dir=str(tmp_path / "o"), experiments=["global"], field_dropout=0.5,
                          vocab_size=400, test_fraction=0.2)
    import metacond.data_builders.news.builder as b

    # Only the Hub call is replaced (no network here); local parquet loading stays real.
    real = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: fake_load_dataset(*a, **k) if a and a[0] == "someuser/cc-news-sample" else real(*a, **k))
    rep = b.build_news(cfg, progress=False)
    assert calls == [("someuser/cc-news-sample", None, "train", True)]
    assert rep["counts"]["kept"] == 100
    from datasets import load_from_disk

    spans = load_from_disk(str(tmp_path / "o" / "global" / "full" / "hf"))["train"]["meta_spans"]
    assert all(len(s) == 3 for s in spans)  # one span per field; a dropped field's span is empty
    n_fields = [sum(b > a for a, b in s) for s in spans]
    assert min(n_fields) < 3 and max(n_fields) >= 2 and 0.8 < np.mean(n_fields) < 2.2  # about half of 3 fields survive


def test_parallel_streaming_build_matches_serial(tmp_path):
    """num_proc=2 (forked workers, bounded in flight) writes exactly what one process writes, in both formats."""
    import pyarrow.parquet as pq
    from datasets import load_from_disk

    write_fixture(tmp_path / "news.jsonl", per_country=6)
    reps = {}
    for n in (1, 2):
        cfg = NewsBuildConfig(input=str(tmp_path / "news.jsonl"), output_dir=str(tmp_path / f"o{n}"), experiments=["global", "leave-one-out"],
                              vocab_size=400, test_fraction=0.2, validation_fraction=0.15, num_proc=n, block_size=64)
        reps[n] = build_news(cfg, progress=False)
    assert reps[1]["counts"] == reps[2]["counts"] and reps[1]["experiments"] == reps[2]["experiments"]
    for exp in ("global", "leave-one-out/asia"):
        assert set(reps[2]["experiments"][f"{exp}/full"]["splits"]) == {"train", "validation", "test"}
        for f in ("train", "validation", "test", "train_blocks"):
            a = pq.read_table(tmp_path / "o1" / exp / "full" / "parquet" / f"{f}.parquet")
            b = pq.read_table(tmp_path / "o2" / exp / "full" / "parquet" / f"{f}.parquet")
            assert a.equals(b), (exp, f)
        hf = load_from_disk(str(tmp_path / "o2" / exp / "full" / "hf"))
        for s in hf:
            assert hf[s].to_dict() == pq.read_table(tmp_path / "o2" / exp / "full" / "parquet" / f"{s}.parquet").to_pydict()
            assert len(hf[s]) == reps[2]["experiments"][f"{exp}/full"]["splits"][s]
    # Packed blocks hold every piece of every training document once (first-fit: not in order); position_ids restart at
    # each piece, whose first label is -100 (nothing before it in the block belongs to it); padding is reported and low.
    g = pq.read_table(tmp_path / "o2" / "global" / "full" / "parquet" / "train.parquet").to_pydict()
    blocks = pq.read_table(tmp_path / "o2" / "global" / "full" / "parquet" / "train_blocks.parquet").to_pydict()
    assert all(len(x) == 64 for x in blocks["input_ids"])
    got, pad = [], 0
    for ids, labs, pos in zip(blocks["input_ids"], blocks["labels"], blocks["position_ids"]):
        starts = [k for k, p in enumerate(pos) if p == 0] + [64]
        for a, b in zip(starts, starts[1:]):
            if ids[a] == 0:  # padding segment (id 0 is a special token, never inside a document)
                assert set(labs[a:b]) == {-100} and b == 64
                pad += b - a
                continue
            got.append((tuple(ids[a:b]), tuple(labs[a:b])))
    want = [(tuple(ids[s:s + 64]), (-100,) + tuple(labs[s + 1:s + 64])) for ids, labs in zip(g["input_ids"], g["labels"])
            for s in range(0, len(ids), 64)]
    assert sorted(got) == sorted(want)
    padding = reps[2]["experiments"]["global/full"]["block_padding"]
    assert padding == pytest.approx(pad / (64 * len(blocks["input_ids"])), abs=1e-4) and padding < 0.1
    assert max(len(x) for x in g["input_ids"]) > 64  # some documents were cut into pieces


def test_console_counts_every_line_and_warns_about_empty_splits(tmp_path):
    """Rows read includes unparseable lines; a tiny input says on the console that splits came out empty."""
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    lines = [json.dumps({"url": f"https://www.{OUTLET['ng']}/news/{i}", "text": article(rng, "lagos")}) for i in range(3)]
    lines += ["{not json", json.dumps({"url": None, "text": article(rng, "abuja")})]
    (tmp_path / "tiny.jsonl").write_text("\n".join(lines) + "\n")
    r = subprocess.run([sys.executable, "-m", "metacond", "news", "build", "--input", str(tmp_path / "tiny.jsonl"), "--regions", "paper17",
                        "--experiments", "global", "--templates", "full", "--output_dir", str(tmp_path / "out"), "--vocab_size", "300"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "rows read 5 (1 unparseable lines), kept 3" in r.stdout
    assert "missing_url 1" in r.stdout and "malformed_url" not in r.stdout
    assert "warning: global/full has no" in r.stdout


def test_build_into_a_non_empty_folder_is_refused_unless_overwrite(tmp_path):
    from dataclasses import replace

    write_fixture(tmp_path / "news.jsonl", per_country=6)
    out = tmp_path / "o"
    (out / "global" / "stale").mkdir(parents=True)
    cfg = NewsBuildConfig(input=str(tmp_path / "news.jsonl"), output_dir=str(out), experiments=["global"], templates=["none"], vocab_size=400,
                          test_fraction=0.2)
    with pytest.raises(MetacondError, match=r"not empty \(global\): pass --overwrite_output_dir"):
        build_news(cfg, progress=False)
    assert (out / "global" / "stale").is_dir()  # refused: nothing removed
    build_news(replace(cfg, overwrite_output_dir=True), progress=False)
    assert not (out / "global" / "stale").exists() and (out / "global" / "none" / "hf").is_dir()


def test_composition_kept_and_dropped_per_continent(built):
    rep, out = built
    g = rep["experiments"]["global/full"]
    kept, dropped = g["continents"]["train"], g["dropped"]["train"]
    assert len(set(kept.values())) == 1  # --balance continent: the smallest continent's count everywhere
    resolved_train = {c: n for c, n in rep["per_continent"].items()}  # every split; train is a subset
    for c in kept:
        assert kept[c] + dropped.get(c, 0) <= resolved_train[c]
    assert sum(dropped.values()) > 0 and set(rep["unused_continents"]) <= set(rep["per_continent"]) - set(kept)
    card = (out / "README.md").read_text()
    assert "| train kept per continent | train dropped per continent |" in card and "--balance continent" in card


def test_declared_column_fields_render_the_same_bytes_in_training_rows_and_eval_blocks(tmp_path):
    """A Reuters-like corpus (country column, dateline, no URLs) with a user-declared template: the field enters
    the prefix in the declared order, rows without a required value are dropped and counted, an optional field's
    empty line is left out, and the eval renderer gives the training row's prefix byte for byte."""
    from datasets import load_from_disk

    from metacond.data_builders.news.metadata import metadata_block

    rng = np.random.default_rng(0)
    cities = {"United States": "NEW YORK", "Japan": "TOKYO", "Kenya": "NAIROBI", "United Kingdom": "LONDON", "Brazil": "SAO PAULO"}
    rows = []
    for i in range(200):
        country = list(cities)[i % 5]
        dateline = "" if i % 10 == 3 else f"{cities[country]}, March {1 + i % 28}"
        rows.append({"country": country, "dateline": dateline, "title": f"Report {i}",
                     "text": " ".join(rng.choice(["shares", "rose", "trade", "bank", "said", "oil", "prices"], 60))})
    p = tmp_path / "reuters.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    common = dict(input=str(p), country_column="country", regions="all", experiments=["global"], balance="none", vocab_size=500,
                  test_fraction=0.2, validation_fraction=0.1)
    rep = build_news(NewsBuildConfig(**common, templates=["country,dateline", "none"], output_dir=str(tmp_path / "req")), progress=False)
    assert rep["counts"]["missing_dateline"] == 20 and rep["counts"]["kept"] == 180
    assert set(rep["experiments"]) == {"global/country+dateline", "global/none"}
    ds = load_from_disk(str(tmp_path / "req" / "global" / "country+dateline" / "hf"))
    for split in ("train", "test"):
        for r in ds[split].select(range(5)):
            block = metadata_block(r, "country,dateline")
            assert block.startswith("COUNTRY: ") and f"\nDATELINE: {r['dateline']}\n\n" in block
            assert r["document"].startswith(block + "TITLE: ")
            assert len(r["meta_spans"]) == 2
    none = load_from_disk(str(tmp_path / "req" / "global" / "none" / "hf"))
    assert sorted(none["train"]["doc_id"]) == sorted(ds["train"]["doc_id"])  # every template renders the same articles
    # Optional: the empty datelines stay, without their line.
    rep = build_news(NewsBuildConfig(**common, templates=["dateline?,country"], output_dir=str(tmp_path / "opt")), progress=False)
    assert "missing_dateline" not in rep["counts"] and rep["counts"]["kept"] == 200
    opt = load_from_disk(str(tmp_path / "opt" / "global" / "dateline+country" / "hf"))
    docs = [d for s in opt for d in opt[s]["document"]]
    assert sum(d.startswith("COUNTRY: ") for d in docs) == 20 and sum(d.startswith("DATELINE: ") for d in docs) == 180
    # One span per template field even where the optional line is left out (an empty span), so train-time per-field
    # dropout drops the field it names: dateline only, or country only, in every row.
    from transformers import AutoTokenizer

    from metacond.training.schedule import MetadataSchedule

    tok = AutoTokenizer.from_pretrained(tmp_path / "opt" / "tokenizer")
    train = opt["train"]
    assert all(len(m) == 2 for m in train["meta_spans"])
    assert sum(m[0][0] == m[0][1] for m in train["meta_spans"]) == sum(d.startswith("COUNTRY: ") for d in train["document"])
    for p_drop, gone, kept in (([1.0, 0.0], "DATELINE: ", "COUNTRY: "), ([0.0, 1.0], "COUNTRY: ", None)):
        sched = MetadataSchedule(field_dropout=p_drop)
        for i, ex in enumerate(train.select(range(40))):
            text = tok.decode(sched.apply(ex, i)["input_ids"], skip_special_tokens=True)
            assert gone not in text and (kept is None or text.startswith(kept)), text[:80]
            assert text.rstrip().endswith(ex["document"].rstrip()[-20:])  # the article itself untouched


def _dolma_rows(n: int) -> list[dict]:
    """Records in the Common Pile news layout (dolma): the URL nested under metadata, the site under source."""
    sites = [("co.za", "za"), ("co.ke", "ke"), ("in", "in"), ("co.uk", "gb"), ("ca", "ca"), ("com.ng", "ng")]
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        tld, _ = sites[i % len(sites)]
        words = " ".join(rng.choice(["council", "rain", "market", "court", "school", "budget", "port", "festival"], 50))
        out.append({"id": i, "text": f"Story {i}. {words}.", "source": f"news-site{i % len(sites)}", "added": "2024-05-27T17:38:09",
                    "created": f"May {1 + i % 28}, 2018", "metadata": {"license": "CC BY 4.0", "url": f"https://www.site{i % 6}.{tld}/story-{i}",
                                                                      "author": "Staff"}})
    return out


def test_any_datasets_input_and_the_common_pile_news_recipe(tmp_path):
    """The packaged Common Pile recipe on a local fixture of its schema (gzip JSONL, URL under metadata.url), and the
    same rows as a glob of shards and as a save_to_disk folder: one build, whatever the container."""
    import gzip

    from datasets import Dataset, load_from_disk

    from metacond.config import load_yaml_config

    rows = _dolma_rows(120)
    with gzip.open(tmp_path / "news.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    for k in range(2):
        with gzip.open(tmp_path / f"shard-{k}.jsonl.gz", "wt") as f:
            f.write("\n".join(json.dumps(r) for r in rows[k * 60:(k + 1) * 60]) + "\n")
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    recipe = load_yaml_config("localization/data/common-pile-news")
    assert recipe["url_column"] == "metadata.url" and "url,source" in recipe["templates"]
    kept = {}
    for name, source in (("gz", "news.jsonl.gz"), ("glob", "shard-*.jsonl.gz"), ("saved", "saved")):
        cfg = NewsBuildConfig(**{**recipe, "input": str(tmp_path / source), "output_dir": str(tmp_path / f"out-{name}"), "experiments": ["global"],
                                 "vocab_size": 400, "test_fraction": 0.2})
        rep = build_news(cfg, progress=False)
        kept[name] = (rep["counts"]["kept"], rep["per_country"])
    assert kept["gz"] == kept["glob"] == kept["saved"] and kept["gz"][0] == 120
    assert set(kept["gz"][1]) == {"za", "ke", "in", "gb", "ca", "ng"}
    doc = load_from_disk(str(tmp_path / "out-gz" / "global" / "url+source" / "hf"))["train"][0]["document"]
    assert doc.startswith("URL: site") and "\nSOURCE: news-site" in doc.split("\n\n")[0]
