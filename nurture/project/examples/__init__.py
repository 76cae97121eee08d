"""Example sequences that `nurture init` writes into a new project (copies of sequences/ files)."""
