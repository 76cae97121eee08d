"""Sequence files: YAML loading with positions, pydantic models, template checks, diagnostics."""
