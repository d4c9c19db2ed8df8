"""PCFG study evaluations, each held against the exact Bayes-optimal answer of the grammar.

- ``loss``: next-token loss on held-out sequences with and without metadata, beside the Bayes loss.
- ``probing``: linear probes reading ``j_d`` from frozen hidden states, against prompt length.
- ``grammar_accuracy``: CYK acceptance of sampled continuations, against prompt length.

The study that trains the models and runs these is ``metacond.studies.pcfg``.
"""
