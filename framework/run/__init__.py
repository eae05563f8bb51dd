"""One processor run, for one partition: where a processor runs.

:mod:`~framework.run.runner` runs one processor (critical inputs, change detection, the SQL or
Python transform, the completion message), deciding what to run in :mod:`~framework.run.decisions`, its
warehouse I/O in :mod:`~framework.run.runner_io` and its message in :mod:`~framework.run.messages`;
:mod:`~framework.run.changes` detects which entities changed, :mod:`~framework.run.transform`
binds parameters and runs Python transforms, :mod:`~framework.run.fanout` publishes per-entity
messages, :mod:`~framework.run.code_state` and :mod:`~framework.run.history` remember what ran
with which code, and :mod:`~framework.run.verify` (with :mod:`~framework.run.table_diff`)
compares a processor's table with what its current code would produce.

Why its own package: a reader asking "what happens when one processor runs" finds it here,
apart from :mod:`framework.drive` (a partition through the phases), which sits above it and
calls the runner. Nothing here imports :mod:`framework.drive` (the layers contract).
"""
