"""Data-parallel pretraining in 2 CPU processes (gloo) against 1 process with the same global batch."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "training" / "recipes" / "pcfg" / "tiny" / "pretrain.yaml"


def _free_port() -> int:
    # A fixed port per test process was reused by the next launch while the last one's rendezvous socket lingered:
    # that launch failed at once, so a kill test could "kill" a run that never trained.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cmd(out: Path, nproc: int, per_device: int, steps: int, extra=()) -> list[str]:
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(_free_port())]
    return [*(launch if nproc > 1 else [sys.executable]), "-m", "metacond.training.pretrain", "--config", str(RECIPE), "--output_dir", str(out),
            "--max_steps", str(steps), "--per_device_train_batch_size", str(per_device), "--eval_strategy", "no", "--save_steps", "6",
            "--logging_steps", "1", "--plot", "false", "--pcfg_train_size", "2000", "--disable_tqdm", "true", *extra]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def _run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env())
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def _steps(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "steps.jsonl").read_text().splitlines() if x.strip()]


def test_two_processes_train_one_model_like_one_process_with_the_same_global_batch(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _run(_cmd(one, 1, 16, 12))
    r = _run(_cmd(two, 2, 8, 12))
    assert r.stdout.count("finished:") == 1  # one final directory, written once
    s1, s2 = (json.loads((d / "training_summary.json").read_text()) for d in (one, two))
    assert s2["hardware"]["world_size"] == 2 and s1["hardware"]["world_size"] == 1
    # Same examples, same metadata decisions, same scored tokens at every step: the ranks split each global batch without overlap.
    for a, b in zip(_steps(one), _steps(two)):
        assert (a["examples"], a["with_metadata"], a["scored_tokens"]) == (b["examples"], b["with_metadata"], b["scored_tokens"]), (a, b)
    assert s2["tokens_seen"] == s1["tokens_seen"] and s2["tokens_seen"]["examples"] == 12 * 16
    # Gradients are averaged over the same 16 examples: the loss curves agree up to float reduction order.
    l1 = [h["loss"] for h in s1["loss_curve"] if "loss" in h]
    l2 = [h["loss"] for h in s2["loss_curve"] if "loss" in h]
    assert len(l1) == len(l2) == 12 and max(abs(a - b) / a for a, b in zip(l1, l2)) < 2e-3
    from transformers import AutoModelForCausalLM

    m1, m2 = (AutoModelForCausalLM.from_pretrained(d) for d in (one, two))
    ids = torch.arange(m1.config.vocab_size).repeat(3)[None]
    with torch.no_grad():
        assert torch.allclose(m1(ids).logits, m2(ids).logits, atol=2e-3)


def test_two_process_run_resumes_after_a_kill(tmp_path):
    out, ref = tmp_path / "killed", tmp_path / "ref"
    log = tmp_path / "killed.log"
    with log.open("w") as f:
        proc = subprocess.Popen(_cmd(out, 2, 8, 12, ["--save_steps", "4"]), stdout=f, stderr=subprocess.STDOUT, env=_env())
        deadline = time.time() + 300
        while not (out / "checkpoint-4" / "trainer_state.json").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        # The run must have trained to its first checkpoint: a launch that died at once would make the resume below vacuous.
        assert (out / "checkpoint-4").is_dir(), f"the run stopped before its first checkpoint (exit {proc.poll()}): {log.read_text()[-8000:]}"
        # SIGKILL the launcher and its workers (the elastic agent runs workers in their own sessions): a hard crash.
        subprocess.run(["pkill", "-KILL", "-f", str(out)], check=False)
        proc.wait()
    time.sleep(1)
    assert not (out / "training_summary.json").exists(), "the run finished before it could be killed"
    _run(_cmd(out, 2, 8, 12, ["--save_steps", "4"]))
    s = json.loads((out / "training_summary.json").read_text())
    assert s["resumed_from"] and "checkpoint-" in s["resumed_from"]
    _run(_cmd(ref, 2, 8, 12, ["--save_steps", "4"]))
    assert [(x["step"], x["examples"], x["with_metadata"]) for x in _steps(out)] == [(x["step"], x["examples"], x["with_metadata"]) for x in _steps(ref)]


def test_a_launch_that_would_train_independent_copies_fails_in_one_line(tmp_path):
    """WORLD_SIZE says 2 processes but no process group forms (a misconfigured launcher): refuse, do not train a copy."""
    env = {**_env(), "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    env.pop("MASTER_ADDR", None)
    r = subprocess.run([sys.executable, "-m", "metacond", "pretrain", "--config", str(RECIPE), "--output_dir", str(tmp_path / "x"), "--max_steps", "2",
                        "--eval_strategy", "no"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "x" / "training_summary.json").exists()


FSDP2 = ["--fsdp", "full_shard auto_wrap", "--fsdp_config",
         '{"fsdp_version": 2, "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"], "state_dict_type": "FULL_STATE_DICT"}']


def test_fsdp2_on_cpu_matches_one_process(tmp_path):
    """FSDP2 (fully_shard) runs on CPU/gloo under torchrun; the gathered final directory loads with plain from_pretrained."""
    one, two = tmp_path / "one", tmp_path / "fsdp"
    _run(_cmd(one, 1, 16, 8))
    _run(_cmd(two, 2, 8, 8, FSDP2))
    s1, s2 = (json.loads((d / "training_summary.json").read_text()) for d in (one, two))
    assert s2["hardware"]["world_size"] == 2 and s2["recipe"]["training"]["fsdp_config"]["version"] == 2
    assert s2["tokens_seen"] == s1["tokens_seen"]
    l1 = [h["loss"] for h in s1["loss_curve"] if "loss" in h]
    l2 = [h["loss"] for h in s2["loss_curve"] if "loss" in h]
    assert max(abs(a - b) / a for a, b in zip(l1, l2)) < 2e-3
    from transformers import AutoModelForCausalLM

    m1, m2 = (AutoModelForCausalLM.from_pretrained(d) for d in (one, two))
    ids = torch.arange(m1.config.vocab_size).repeat(3)[None]
    with torch.no_grad():
        assert torch.allclose(m1(ids).logits, m2(ids).logits, atol=2e-3)
