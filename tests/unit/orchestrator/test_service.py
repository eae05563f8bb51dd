"""open_orchestrator: alerts suppressed by the rate limiter are reported when it closes."""
from __future__ import annotations

from framework.orchestrator import service
import framework.alerts as alerts_mod
from projects import write_project


def test_suppressed_alerts_are_summarised_when_the_orchestrator_closes(tmp_path, monkeypatch):
    write_project(tmp_path)
    sink = alerts_mod.MemorySink()
    monkeypatch.setattr(alerts_mod, "alerts_from_config",
                        lambda config, clock=None, **kw: alerts_mod.Alerts([sink], max_per_window=1, window_seconds=3600, clock=clock))
    with service.open_orchestrator(tmp_path, publish=False) as orch:
        for _ in range(4):
            orch.alerts.alert("unknown-processor:x", "error", "unknown processor x", {})
        assert len(sink.sent) == 1  # the first is sent at once, the rest suppressed
    # the window is still open when the command ends: the summary is sent anyway
    assert len(sink.sent) == 2 and sink.sent[1].suppressed == 3
