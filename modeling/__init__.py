"""Model configurations, tokenizer construction and checkpoint loading."""
