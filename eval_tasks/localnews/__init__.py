"""lm-eval task family: localized news multiple-choice questions under metadata conditions."""
