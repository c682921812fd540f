"""Execution: Ray, the one task API, the run queue, workers and start estimates."""
