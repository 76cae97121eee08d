"""`nurture explain`, `nurture run`, `nurture status` (being written)."""
