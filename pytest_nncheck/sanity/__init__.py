"""Sanity checks before training: the initial loss, and memorising a tiny set."""
