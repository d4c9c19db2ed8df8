"""lm-eval task folder: PCFG test sequences scored by log-likelihood under each metadata prefix condition."""
