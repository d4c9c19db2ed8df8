"""Evaluations: lm-eval task folders and the PCFG evaluations (later issues)."""
