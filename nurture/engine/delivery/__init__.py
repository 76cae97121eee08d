"""Sends and their fate: the send records, leases, settling uncertain sends, settling held ones."""
