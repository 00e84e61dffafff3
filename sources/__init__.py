"""Source clients: each yields records exactly as the source sent them, and knows nothing of DuckDB."""
