"""Loss curves are titled with what the run is, not a cache hash."""

from pathlib import Path

from metacond.modeling.summary import BuildManifest
from metacond.training.arguments import MetadataArguments, ModelArguments
from metacond.training.pretrain import run_title


def test_titles_say_the_metadata_depth_and_data():
    t = run_title(Path("runs/study/models/dm3"), ModelArguments(model_size="mini"), MetadataArguments(metadata_field_dropout=[0, 0, 0, 1, 1]),
                  BuildManifest(key="48f6a00842fcda14", metadata_mode="mask", config={"grammar": "cpu"}))
    assert t == "dm3: mini, PCFG cpu; metadata slots shown: 3/5"
    t = run_title(Path("x/tiny-global-meta-cooldown"), ModelArguments(), MetadataArguments(cooldown_fraction=0.1),
                  BuildManifest(key="news:global:full", template="full"))
    assert t == "tiny-global-meta-cooldown: tiny, full; metadata fraction 1, cooldown 0.1" and "48f6" not in t
