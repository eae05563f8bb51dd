"""Deploying the generic orchestrator as a Google Cloud Function.

* :mod:`framework.deploy.function` is the runtime: ``handle_completion(cloud_event)`` decodes
  the Pub/Sub CloudEvent and hands the envelope to :class:`framework.orchestrator.Orchestrator`
  (Firestore ledger, Pub/Sub bus, from the bundled ``pipectl.yaml`` target);
  ``handle_sweep(cloud_event)`` runs one sweeper pass per Cloud Scheduler tick.
* :mod:`framework.deploy.package` builds the bundle (``pipectl package``) and the
  ``gcloud functions deploy`` commands, one function per transition's completion topic plus
  the sweep function on the sweep topic.
* ``main.py`` (this folder) is copied to the bundle root: Cloud Functions and
  functions-framework load ``main.py`` and call its ``handle_completion`` / ``handle_sweep``.
"""
