"""The localnews task matrix, defined once: families × metadata conditions (× continents).

A family × condition is one task over every continent the data has (``localnews_mcq_none``), so a file without
Europe runs; ``localnews_mcq_none_<continent>`` restricts it to one continent and refuses a continent without rows.

``_generate_configs.py`` writes every task YAML from these lists, and ``metacond eval`` selects tasks
from them; the continents come from the news builder (``geo.CONTINENTS``) and the conditions are
pretraining template names (``templates.TEMPLATES``), so no list is repeated anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from metacond.data_builders.news.geo import CONTINENTS
from metacond.data_builders.news.templates import TEMPLATES

# MCQ conditions: the single-field templates plus all fields. The two-field ablations are studied by
# perplexity only (the localization grid trains on them; questions add nothing there).
MCQ_CONDITIONS = ("none", "country", "continent", "url", "full")
# "trained": the template of the model's own training build (defaults.trained_template), so a template declared at
# build time (``country,dateline``) is scored through lm-eval without a task of its own.
PPL_CONDITIONS = MCQ_CONDITIONS + tuple(t for t in TEMPLATES if t not in MCQ_CONDITIONS) + ("trained",)
# The reference protocol has two conditions: its synthetic metadata block, or none.
OFFICIAL_CONDITIONS = ("none", "full")


@dataclass(frozen=True)
class Family:
    name: str
    conditions: tuple[str, ...]
    base: str  # the shared YAML the task files include
    metrics: tuple[str, ...]
    version: float  # metadata.version of every task of the family: bump on any change of scoring or prompt
    summary_metric: str  # what ``metacond eval``'s summary table reports
    what: str  # one line for the YAML comment


FAMILIES = (
    Family("mcq", MCQ_CONDITIONS, "_default_template_yaml", ("acc", "acc_norm", "acc_bytes", "acc_tokens"), 3.0, "acc",
           "log-likelihood of each option text after the question"),
    Family("letter", MCQ_CONDITIONS, "_letter_template_yaml", ("acc",), 2.0, "acc",
           "log-likelihood of each option letter after the lettered options"),
    Family("gen", MCQ_CONDITIONS, "_gen_template_yaml", ("acc", "parsed"), 3.0, "acc",
           "generated letter answer, parsed"),
    Family("official", OFFICIAL_CONDITIONS, "_official_template_yaml", ("acc", "acc_norm", "acc_bytes", "acc_tokens"), 2.0, "acc_tokens",
           "the reference work's prompt and metadata block, option text scored"),
    Family("ppl", PPL_CONDITIONS, "_ppl_template_yaml", ("bits_per_byte",), 3.0, "bits_per_byte",
           "held-out article log-likelihood, metadata not scored"),
)
FAMILY = {f.name: f for f in FAMILIES}
QUESTION_FAMILIES = ("mcq", "letter", "gen", "official")

__all__ = ["CONTINENTS", "FAMILIES", "FAMILY", "MCQ_CONDITIONS", "OFFICIAL_CONDITIONS", "PPL_CONDITIONS", "QUESTION_FAMILIES"]
