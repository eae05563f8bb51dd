"""``sweep:`` in processors.yaml: defaults, overrides, a located error for a bad cron."""
from __future__ import annotations

from pathlib import Path

from framework.manifest import load_project
from framework.project import load
from framework.plan.resources import desired_resources
from projects import PROCESSORS, line_of, write_project


def test_defaults_every_minute_and_a_project_topic(tmp_path: Path) -> None:
    project = load(write_project(tmp_path / "p"))
    assert (project.sweep.schedule, project.sweep.time_zone, project.sweep.topic, project.sweep.enabled) == (
        "* * * * *", "Etc/UTC", "pipectl-sweep-shop", True)
    # the scheduler job and its topic are cloud resources only: the local plan has none
    assert not [r for r in desired_resources(project, "local") if r.type == "schedule"]
    [job] = [r for r in desired_resources(project, "gcp") if r.type == "schedule"]
    assert (job.name, job.attributes["schedule"], job.attributes["topic"]) == ("pipectl-sweep-shop", "* * * * *", "pipectl-sweep-shop")


def test_declared_schedule_and_disabled_sweep(tmp_path: Path) -> None:
    text = PROCESSORS + 'sweep: {schedule: "*/5 6-23 * * MON-FRI", time_zone: America/New_York, topic: shop-sweep}\n'
    project = load(write_project(tmp_path / "p", processors=text))
    assert (project.sweep.schedule, project.sweep.time_zone, project.sweep.topic) == ("*/5 6-23 * * MON-FRI", "America/New_York", "shop-sweep")
    off = load(write_project(tmp_path / "q", processors=PROCESSORS + "sweep: {enabled: false}\n"))
    assert not [r for r in desired_resources(off, "gcp") if r.type == "schedule" or r.name == off.sweep.topic]


def test_a_bad_cron_is_a_located_error_with_the_fix(tmp_path: Path) -> None:
    text = PROCESSORS + 'sweep:\n  schedule: "every minute"\n'
    _, diags = load_project(write_project(tmp_path / "p", processors=text))
    [err] = [d for d in diags.errors if d.code == "sweep-schedule"]
    assert "not a 5-field unix cron expression" in err.message and "'* * * * *'" in (err.hint or "")
    assert str(err.location.file).endswith("processors.yaml") and err.location.line == line_of(text, "schedule:")
