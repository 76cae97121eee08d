"""The command line: typer commands, rich output, exit codes. No business rules here."""
