"""End to end on a corpus without URLs: a declared template (``country,dateline``) is built, pretrained on, and scored
through lm-eval with and without it, the evaluation context byte-identical to the training rows' prefix."""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_reuters_like_corpus_with_a_dateline_field(tmp_path):
    import lm_eval
    import pyarrow.parquet as pq
    from lm_eval.tasks import TaskManager

    from metacond.data_builders.news.builder import NewsBuildConfig, build_news
    from metacond.eval_tasks import TASK_DIR
    from metacond.training.pretrain import parse_args, run_pretraining

    rng = np.random.default_rng(0)
    cities = {"United States": "NEW YORK", "Japan": "TOKYO", "Kenya": "NAIROBI", "United Kingdom": "LONDON", "Brazil": "SAO PAULO"}
    rows = []
    for i in range(240):
        country = list(cities)[i % 5]
        rows.append({"country": country, "dateline": f"{cities[country]}, March {1 + i % 28}", "title": f"Report {i}",
                     "text": " ".join(rng.choice(["shares", "rose", "trade", "bank", "said", "oil", "prices", cities[country].lower()], 50))})
    (tmp_path / "reuters.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    build_news(NewsBuildConfig(input=str(tmp_path / "reuters.jsonl"), country_column="country", regions="all", experiments=["global"],
                               balance="none", templates=["country,dateline", "none"], vocab_size=400, test_fraction=0.2,
                               validation_fraction=0.1, output_dir=str(tmp_path / "news")), progress=False)
    exp = tmp_path / "news" / "global" / "country+dateline"
    run_pretraining(parse_args(["--dataset", str(exp), "--output_dir", str(tmp_path / "m"), "--model_size", "tiny", "--max_steps", "30",
                                 "--per_device_train_batch_size", "8", "--learning_rate", "0.003", "--logging_steps", "10", "--save_steps", "30",
                                 "--disable_tqdm", "true"]))
    data = exp / "parquet" / "test.parquet"
    tm = TaskManager(include_defaults=False, include_path=str(TASK_DIR / "localnews"), metadata={"pretrained": str(tmp_path / "m"), "data_file": str(data)})
    res = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={tmp_path / 'm'},device=cpu", tasks=["localnews_ppl_trained", "localnews_ppl_none"],
                                  task_manager=tm, bootstrap_iters=0, log_samples=True)
    with_meta, without = (res["results"][t]["bits_per_byte,none"] for t in ("localnews_ppl_trained", "localnews_ppl_none"))
    assert np.isfinite(with_meta) and np.isfinite(without) and with_meta != without
    docs = pq.read_table(data, columns=["document"]).column("document").to_pylist()
    samples = res["samples"]["localnews_ppl_trained"]
    assert len(samples) == len(docs)
    for s in samples:
        ctx = s["doc"]["context"]
        # The training row's own bytes: its COUNTRY and DATELINE block, then the body, as the model saw them.
        assert docs[s["doc"]["article"]].startswith(ctx) and docs[s["doc"]["article"]] == ctx + s["doc"]["body"]
        assert ctx.startswith("COUNTRY: ") and "\nDATELINE: " in ctx
    assert all(not s["doc"]["context"].startswith("COUNTRY") for s in res["samples"]["localnews_ppl_none"])
