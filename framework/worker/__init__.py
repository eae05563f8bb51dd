"""The generic worker service: processors on Cloud Run, fed by Pub/Sub push.

The counterpart of the generic orchestrator function: one HTTP app (``app.create_app``)
runs a phase's processors when its trigger is pushed (``/trigger``) and one entity of a
fanned-out processor when a task is pushed (``/task``). See docs/gcp.md#the-worker-service.
"""
