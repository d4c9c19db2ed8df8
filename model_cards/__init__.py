"""Model cards (model-index from evaluations) and Hub publishing of runs and dataset builds in one commit.

Dataset cards are written by the builders (``data_builders/pcfg/dataset.py``, ``data_builders/news/``)
at build time, beside the files they describe: a card lists that build's splits, counts, drop
reasons and ``configs:`` paths, which only the builder knows while it writes them, and data must
flow one way (data_builders -> ... -> model_cards). This package reads those cards when it pushes a
build; model cards, which need a finished run and its evaluations, are made here.
"""
