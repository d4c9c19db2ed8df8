"""Dataset builders: PCFG sequences (``pcfg``) and geo-tagged news, each writing input_ids, labels and masks."""
