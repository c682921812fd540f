"""A training worker warmed while the first page loads, so the first run starts like a later one.

On a fresh server the first training run paid for everything at once: starting Ray, creating the
RunEvents actor, a worker process importing TensorFlow and Keras building its first graph (8.7 s
to the first epoch where a warm run takes 1.6 s). :func:`warm_up` does that work once per server
process in a background thread: join Ray, create the queue's RunEvents actor and the run keeper
(first: an actor takes a pooled worker of its own, and it must not take the warmed one), then run
:func:`warm_worker` as a task shaped like a training run, which leaves an idle Ray worker with
TensorFlow imported, its thread pools sized, and a tiny model built and called. Ray reuses that
idle worker for the next task of the same shape: the first run, whose launch waits for a warm-up
still under way (:func:`wait_for_warm_up`) rather than start a second worker importing TensorFlow
beside it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
#: {key: set once that warm-up has ended, warm or not}
_finished: dict[str, threading.Event] = {}
#: Seconds the warm-up waits for its task (a loaded machine takes long to import TensorFlow).
WARM_TIMEOUT_S = 300
#: Seconds a run's launch waits for a warm-up under way: its worker is then the warm one, rather
#: than a second one importing TensorFlow beside it on the same cores.
LAUNCH_WAIT_S = 30.0


def warm_worker(cpus: int) -> float:
    """On a Ray worker: what a training run's first seconds would do, minus the data. Returns the
    seconds it took (for logs and benchmarks)."""
    import time

    start = time.perf_counter()
    from core.execution.worker import _size_thread_pools

    _size_thread_pools(cpus)  # before TensorFlow's first op, as train_run does
    import numpy as np
    from keras import backend

    from core.training.fit import train  # noqa: F401 - the module train_run imports: TensorFlow, Keras
    from core.training.models import build_model, hyperparams_for

    model = build_model(hyperparams_for("D", {"epochs": 1}))
    model.train_on_batch(np.zeros((2, 28, 28), np.float32), np.zeros(2, np.int64))
    model.predict_on_batch(np.zeros((2, 28, 28), np.float32))
    backend.clear_session()
    return time.perf_counter() - start


def warm_up(queue: Any, key: str = "") -> bool:
    """Start warming a worker for ``queue`` (a core.execution.queue.JobQueue) in the background,
    once per process and ``key`` (e.g. the run root); True if this call started it. Never raises:
    a failed warm-up only leaves the first run as slow as before."""
    with _lock:
        if key in _finished:
            return False
        _finished[key] = done = threading.Event()
    threading.Thread(target=_warm, args=(queue, done), name="digitlab-warm-up", daemon=True).start()
    return True


def wait_for_warm_up(timeout: float = LAUNCH_WAIT_S) -> bool:
    """Before launching a run: wait up to ``timeout`` seconds for this process's warm-ups under
    way (none: at once); True if none is left."""
    with _lock:
        pending = [event for event in _finished.values() if not event.is_set()]
    return all(event.wait(timeout) for event in pending)


def _warm(queue: Any, done: threading.Event) -> None:
    try:
        import ray

        from core.settings import settings

        # Join Ray and create the actors a run needs before the warm task takes a worker: a new
        # actor takes an idle pooled worker, and the run keeper made at the first launch took the
        # warm one (the first epoch came 9 s after the click instead of 3 s).
        _ = queue.events
        _ = queue.keeper
        cpus = settings().cpus_per_run
        task = ray.remote(max_retries=0)(warm_worker).options(num_cpus=cpus, name="warm-up")
        seconds = ray.get(task.remote(cpus), timeout=WARM_TIMEOUT_S)
        log.info("a training worker is warm (%.1f s)", seconds)
    except Exception as err:  # noqa: BLE001 - warming is an optimisation, never a failure
        log.warning("could not warm a training worker: %s", err)
    finally:
        done.set()
