"""The synthetic study's data layer: leveled PCFGs with latent metadata, sampling, parsing, exact inference."""

from .grammar import PRESETS, Grammar, GrammarError, GrammarSpec, Rule, generate_grammar, parse_rules_text, preset_grammar, resolve_grammar
from .inference import PCFGInference
from .sampler import SampleBatch, sample

__all__ = [
    "PRESETS", "Grammar", "GrammarError", "GrammarSpec", "Rule", "generate_grammar", "parse_rules_text",
    "preset_grammar", "resolve_grammar", "PCFGInference", "SampleBatch", "sample",
]
