"""The one door: everything the pages, ``ui/`` and the CLI see and do with people's work.

``Lab(who)`` sets the owner of what ``who`` makes (runs, grids, uploads, label searches and marks,
corrected versions, evaluations, maps, challenge submissions) and applies the access rules of
:mod:`core.classroom.access`. Something the caller may not see answers exactly like something
missing, so a guessed or shared id tells nothing about other people's work. Nothing behind this
door decides who may do what; nothing in front of it (pages, ``ui/``, the CLI) opens the run
store, the queue or Ray.

The work is grouped by resource, one small object each (:mod:`core.door`), all reached through
``Lab``::

    lab = Lab(who)
    run_id = lab.runs.start(config)
    lab.runs.get(run_id), lab.runs.stop(run_id)
    lab.grids.submit(spec), lab.datasets.check(spec), lab.labels.search(key)
    lab.evaluations.start(run_id, spec), lab.tasks.follow(task_id)
    lab.classroom.students(), lab.challenges.submit(name, run_id), lab.ensembles.evaluate(ids)

The CLI is the administrator (:data:`core.classroom.access.ADMINISTRATOR`) through this same door.
"""

from __future__ import annotations

from functools import cached_property

from core.classroom.access import LOCAL_USER, Identity
from core.classroom.limits import Limits, limits
from core.door.challenges import Challenges
from core.door.classroom import Classroom
from core.door.context import Context, PrivateData
from core.door.datasets import Datasets
from core.door.engine import admit_within_limits, class_dispatch_cap, close_engine, engine, warm_up
from core.door.ensembles import Ensembles
from core.door.evaluations import Evaluations
from core.door.grids import Grids
from core.door.labels import Labels
from core.door.runs import Runs
from core.door.tasks import Tasks

# The default dataset drawn in the background (a task of the one API), as the pages ask for it.
from core.execution.dataset_fill import FIRST_SIZE, fill_in_background, fill_state, opening_spec, settle_opening
from core.execution.queue import JobQueue

__all__ = [
    "FIRST_SIZE",
    "Lab",
    "PrivateData",
    "admit_within_limits",
    "class_dispatch_cap",
    "close_engine",
    "engine",
    "fill_in_background",
    "fill_state",
    "opening_spec",
    "settle_opening",
    "warm_up",
]


class Lab:
    """What ``who`` may see and do, one attribute per resource (``lab.runs``, ``lab.grids``,
    ``lab.datasets``, ``lab.labels``, ``lab.evaluations``, ``lab.tasks``, ``lab.classroom``,
    ``lab.challenges``, ``lab.ensembles``). Costs nothing to make (one per page run or CLI
    command): each resource is made on first use, and the process's run queue and its dispatcher
    are joined on first use of runs or tasks, not to check a dataset or read the limits. ``jobs``:
    the run queue to use instead of the process's engine (tests, the CLI's non-dispatching one)."""

    def __init__(self, who: Identity, jobs: JobQueue | None = None) -> None:
        self.who = who
        self._context = Context(who, jobs)

    # ---- who is asking -------------------------------------------------------------------------

    @property
    def staff(self) -> bool:
        """Whether the caller sees and acts on everyone's work (teachers, administrators)."""
        return self.who.staff

    @property
    def shows_owners(self) -> bool:
        """Whether the caller sees other people's runs (staff of a shared lab, not the single local
        user), so tables and pickers name each run's owner."""
        return self.staff and self.who != LOCAL_USER

    @property
    def limits(self) -> Limits:
        """The instance's limits as they apply to the caller (read afresh each time)."""
        return limits()

    # ---- the resources -------------------------------------------------------------------------

    @cached_property
    def runs(self) -> Runs:
        """The caller's training runs: start, follow, stop, delete, publish, read what they learned."""
        return Runs(self._context)

    @cached_property
    def grids(self) -> Grids:
        """The caller's grids: many runs queued, read and stopped as one."""
        return Grids(self._context)

    @cached_property
    def datasets(self) -> Datasets:
        """Datasets the caller may load, and their uploads."""
        return Datasets(self._context)

    @cached_property
    def labels(self) -> Labels:
        """Suspect-label searches, the caller's marks and corrections, corrected versions."""
        return Labels(self._context)

    @cached_property
    def evaluations(self) -> Evaluations:
        """Runs evaluated on another dataset, and embedding maps of their test sets."""
        return Evaluations(self._context)

    @cached_property
    def tasks(self) -> Tasks:
        """The caller's background work: follow, wait for, cancel; how long it takes."""
        return Tasks(self._context)

    @cached_property
    def classroom(self) -> Classroom:
        """The class as staff see it; whether the caller may view someone's work."""
        return Classroom(self._context)

    @cached_property
    def challenges(self) -> Challenges:
        """The class's challenges, submissions and boards."""
        return Challenges(self._context)

    @cached_property
    def ensembles(self) -> Ensembles:
        """Finished runs averaged and evaluated as one model."""
        return Ensembles(self._context)
