"""The DuckDB warehouse: connections, migrations, raw landing, run bookkeeping and publishing."""
