"""The store: tables, migrations, engine setup and the hot-path SQL."""
