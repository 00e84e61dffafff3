"""Prefect flows and the `census` command: orchestration only."""

OUR_LOGGERS: tuple[str, ...] = ("sources", "warehouse", "transforms")
"""The packages whose modules log through the standard library rather than Prefect's run logger: what
`census` names in `PREFECT_LOGGING_EXTRA_LOGGERS` unless the user did (`flows.cli`), and what a flow raises
to Prefect's level (`flows.pipeline.our_loggers_at_prefect_level`). Here, where importing it imports nothing."""
