"""The files one step writes for the next have one schema each; the JSON layout is unchanged."""

import json

import pytest

from metacond import MetacondError
from metacond.modeling.summary import BuildManifest, TrainingSummary


def test_training_summary_round_trip_and_derived_fields(tmp_path):
    s = TrainingSummary(recipe={"training": {"max_steps": 40}}, model={"parameters": 1234, "size": "tiny"}, data={"dataset": "d"},
                        tokens_seen={"input_tokens": 999, "scored_tokens": 900, "examples": 64}, metadata_scheme={"mode": "mask"},
                        loss_curve=[{"step": i, "loss": float(10 - i)} for i in range(10)] + [{"step": 10, "eval_loss": 1.0}],
                        final_train_loss=5.5, wall_time_seconds=3.2, hardware={"processor": "x86_64"})
    s.save(tmp_path)
    raw = json.loads((tmp_path / "training_summary.json").read_text())
    assert raw["model"]["parameters"] == 1234 and raw["tokens_seen"]["input_tokens"] == 999  # the layout readers of old runs know
    back = TrainingSummary.load(tmp_path)
    assert back == s and back.parameters == 1234 and back.input_tokens == 999 and back.steps == 40 and back.device == "x86_64"
    assert back.final_window_loss(0.1) == 1.0 and back.final_window_loss(0.3) == pytest.approx(2.0)
    (tmp_path / "training_summary.json").write_text(json.dumps({"model": {}}))
    with pytest.raises(MetacondError, match="lacks"):
        TrainingSummary.load(tmp_path)


def test_build_manifest_keeps_builder_specific_keys(tmp_path):
    m = BuildManifest(key="news:global:full", metadata_mode="remove", template="full", config={"seed": 0}, extra={"splits": {"train": 3}})
    m.save(tmp_path)
    raw = json.loads((tmp_path / "metacond_build.json").read_text())
    assert raw == {"key": "news:global:full", "metadata_mode": "remove", "config": {"seed": 0}, "template": "full", "splits": {"train": 3}}
    assert BuildManifest.load(tmp_path) == m and BuildManifest.exists(tmp_path)
    with pytest.raises(MetacondError, match="not a metacond build"):
        BuildManifest.load(tmp_path / "nowhere")
