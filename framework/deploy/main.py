"""Cloud Function entry point: copied to the bundle root as ``main.py`` by ``pipectl package``.

Two entry points: ``handle_completion`` (one deployment per transition's completion topic)
and ``handle_sweep`` (the sweep topic, ticked by the Cloud Scheduler job ``pipectl apply``
manages). Run locally with ``functions-framework --source main.py --target handle_completion``. The manifests sit next to
this file, so the project folder is this file's folder (unless PIPECTL_PROJECT_DIR is set).
"""
from __future__ import annotations

import os
from pathlib import Path

import functions_framework

from framework.deploy import function as _function

_function.configure(project_dir=Path(os.environ.get("PIPECTL_PROJECT_DIR") or Path(__file__).resolve().parent))


@functions_framework.cloud_event
def handle_completion(cloud_event):  # noqa: ANN001 - a cloudevents.http.CloudEvent
    """One completion envelope from the transition's completion topic."""
    return _function.handle_completion(cloud_event)


@functions_framework.cloud_event
def handle_sweep(cloud_event):  # noqa: ANN001 - a cloudevents.http.CloudEvent
    """One scheduler tick on the sweep topic: one sweeper pass."""
    return _function.handle_sweep(cloud_event)
