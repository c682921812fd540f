"""Execution: Ray, the one task API, the run queue, workers and start estimates."""

import os

# No Ray call starts or joins a Ray by itself: Ray's auto-init would start a local Ray without the
# lab's token and loopback binding, or join whatever cluster it finds on the machine. The lab joins
# explicitly (cluster.connect); a call made after leaving a Ray fails instead. Set before Ray's
# first import, which reads it.
os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
