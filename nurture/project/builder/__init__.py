"""The dashboard's sequence builder without the dashboard: drafts, their checks and saving."""
