"""Experiments: grids and the report's tables."""
