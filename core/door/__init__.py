"""The resources behind the one door (:class:`core.lab.Lab`): one small object per kind of work,
each reached as an attribute of ``Lab(who)`` (``lab.runs``, ``lab.grids``, ``lab.datasets``,
``lab.labels``, ``lab.evaluations``, ``lab.tasks``, ``lab.classroom``, ``lab.challenges``,
``lab.ensembles``). They share one :class:`~core.door.context.Context` (who is asking, the run
queue and view made on first use) and hand out none of it: no run store, queue or Ray handle
leaves this package. Who may do what is :mod:`core.classroom.access`'s; a resource only asks it.
Pages and ``ui/`` reach these through ``Lab`` alone, never by importing them.
"""
