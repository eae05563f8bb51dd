"""A partition through the phases: where a date flows from landing to the last phase.

:mod:`~framework.drive.pipeline` is the driver (a virtual clock, the orchestrator's decisions,
one :class:`~framework.run.runner.ProcessorRunner` per dispatched processor), with its
per-run bookkeeping in :mod:`~framework.drive.driver_state` and its report in
:mod:`~framework.drive.reports`; :mod:`~framework.drive.session` opens a project's backends
and is what the CLI and the UI call (run, backfill, simulate-update, sample data);
:mod:`~framework.drive.replay` re-runs from a phase or for some entities,
:mod:`~framework.drive.trace` reconstructs a run's causal tree, :mod:`~framework.drive.demo`
and :mod:`~framework.drive.demo_place` are ``pipectl demo``, :mod:`~framework.drive.landing`
writes source rows, and :mod:`~framework.drive.bus_setup` /
:mod:`~framework.drive.dead_letters` create the bus topology and list or replay dead letters.

Why its own package: it answers "where does a date flow through the phases", above
:mod:`framework.run` ("where does one processor run"), which it imports and never the reverse.
"""
