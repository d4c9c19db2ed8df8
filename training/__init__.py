"""Pretraining, cooldown and instruction tuning (later issues)."""
