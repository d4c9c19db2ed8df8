"""Model and dataset cards and Hub publishing (later issues)."""
