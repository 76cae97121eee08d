"""What happened: figures, the report, logs, timelines, explanations, status, metrics."""
