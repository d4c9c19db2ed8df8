"""lm-eval's own CLI on a build without Europe (like the shared newswire corpus): the empty continent's task says why it
cannot, in one line. (The condition tasks on such a build run through README's own lm_eval command:
tests/test_readme_commands.py.)"""

import json
import subprocess
import sys

import pytest

from metacond.eval_tasks import TASK_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def no_europe(tmp_path_factory):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from news_fixture import small_build_with_model, write_questions

    d = tmp_path_factory.mktemp("cli")
    small_build_with_model(d, per_country=3, max_position_embeddings=1024)
    t = pq.read_table(d / "news" / "global" / "full" / "parquet" / "test.parquet")
    pq.write_table(t.filter(pc.not_equal(t.column("continent"), "europe")), d / "test.parquet")
    write_questions(d / "all.jsonl", per_continent=2)
    rows = [json.loads(x) for x in (d / "all.jsonl").read_text().splitlines() if x.startswith("{") and x.endswith("}")]
    (d / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r.get("continent") != "europe"))
    return d


def _lm_eval(d, tasks: str, data: str):
    cmd = [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args", f"pretrained={d / 'model'}", "--device", "cpu",
           "--include_path", str(TASK_DIR / "localnews"), "--tasks", tasks, "--metadata", json.dumps({"data_file": str(data)})]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


def test_cli_names_the_empty_continent(no_europe):
    d = no_europe
    r = _lm_eval(d, "localnews_mcq_none_europe", d / "q.jsonl")
    assert r.returncode != 0 and "has no valid questions from europe" in r.stderr and "IndexError" not in r.stderr
