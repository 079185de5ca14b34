"""Flows: plans of small steps run by one runner (state, continue, abort, undo, dry-run)."""
