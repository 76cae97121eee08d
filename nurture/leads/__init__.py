"""Leads and what happens to them: records, fields, enrollment, ingest, imports, consent, tasks."""
