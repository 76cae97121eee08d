"""Dry runs: simulated leads, events and cases, JUnit reports."""
