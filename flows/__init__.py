"""Prefect flows and the `census` command: orchestration only."""
