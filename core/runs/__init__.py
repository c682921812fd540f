"""Runs: the run index (SQLite) and run folders."""
