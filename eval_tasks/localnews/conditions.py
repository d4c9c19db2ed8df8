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
    title: str  # the heading of its table in eval_summary.md and model cards
    panel: str  # the title of its panel in eval_summary.png
    protocol: str  # how a study's claim names it
    country_metric: str  # what the per-country table reports


# In the order of every table and figure.
FAMILIES = (
    Family("mcq", MCQ_CONDITIONS, "_default_template_yaml", ("acc", "acc_norm", "acc_bytes", "acc_tokens"), 3.0, "acc",
           "log-likelihood of each option text after the question",
           "Localized MCQ accuracy (log-likelihood of option texts, summed; 4 option orders)", "Localized MCQ (log-likelihood)",
           "our log-likelihood protocol", "acc"),
    Family("letter", MCQ_CONDITIONS, "_letter_template_yaml", ("acc",), 2.0, "acc",
           "log-likelihood of each option letter after the lettered options",
           "Localized MCQ accuracy (log-likelihood of option letters; 4 option orders)", "Localized MCQ (letters)", "the letter protocol", "acc"),
    Family("official", OFFICIAL_CONDITIONS, "_official_template_yaml", ("acc", "acc_norm", "acc_bytes", "acc_tokens"), 2.0, "acc_tokens",
           "the reference work's prompt and metadata block, option text scored",
           "Localized MCQ accuracy, reference protocol (per-token mean of the option, the reference default; 4 option orders)",
           "Localized MCQ (reference protocol)", "the reference's protocol", "acc"),
    Family("gen", MCQ_CONDITIONS, "_gen_template_yaml", ("acc", "parsed"), 3.0, "acc",
           "generated letter answer, parsed",
           "Localized MCQ accuracy (generated answer, letter parsed; 4 option orders)", "Localized MCQ (generated)", "the generative protocol", "acc"),
    Family("ppl", PPL_CONDITIONS, "_ppl_template_yaml", ("bits_per_byte",), 3.0, "bits_per_byte",
           "held-out article log-likelihood, metadata not scored",
           "Regional bits per byte (metadata not scored; lower is better)", "Regional perplexity (metadata excluded)", "held-out perplexity",
           "token_perplexity"),
)
FAMILY = {f.name: f for f in FAMILIES}
QUESTION_FAMILIES = ("mcq", "letter", "gen", "official")

__all__ = ["CONTINENTS", "FAMILIES", "FAMILY", "MCQ_CONDITIONS", "OFFICIAL_CONDITIONS", "PPL_CONDITIONS", "QUESTION_FAMILIES"]
