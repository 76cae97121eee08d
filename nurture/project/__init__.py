"""A project on disk and in the store: layout, plan, apply, sync, sequences, funnels."""
