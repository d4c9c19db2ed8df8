"""Commands that join two layers, so neither layer imports the other.

``metacond pretrain``: pretraining (training layer) with the Hub push of the cards layer as its publisher, used when
the recipe sets ``push_to_hub``. The push writes a model card, which reads evaluation results, so training cannot
import it.
"""

from __future__ import annotations

from typing import Sequence


def pretrain(argv: Sequence[str] | None = None) -> int:
    from metacond.model_cards.push import publish_run
    from metacond.training.pretrain import main

    return main(argv, publish=publish_run)
