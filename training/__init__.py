"""Pretraining (metadata schedules, MeCo cooldown, data-parallel launch), instruction tuning with TRL, and their recipes."""
