"""Each trigger rule as a pure function of (transition, round state, now)."""
from __future__ import annotations

from framework.manifest.model import Tier, Transition, TriggerRule
from framework.orchestrator.policy import RoundView, evaluate, wake_times

T0 = 1000.0
FIVE = frozenset({"a", "b", "c", "d", "e"})


def tr(rule: TriggerRule = TriggerRule("all"), critical: tuple = (), deadline: int | None = None, debounce: int = 120) -> Transition:
    return Transition("raw", "analytics", "trigger", tuple(sorted(FIVE)), critical, rule, deadline, "c", "t", debounce)


def view(done: set, failed: set = frozenset(), collecting: bool = False, expected: frozenset = FIVE) -> RoundView:
    return RoundView(expected, frozenset(done), frozenset(failed), T0, collecting)


def test_all_fires_only_when_every_expected_processor_completed():
    assert evaluate(tr(), view({"a", "b", "c", "d"}), T0).outcome == "wait"
    v = evaluate(tr(), view({"a", "b", "c", "d"}), T0)
    assert v.missing == ("e",) and "waiting for e" in v.reason
    assert evaluate(tr(), view(set(FIVE)), T0).fires


def test_all_ignores_completions_outside_the_expected_set():
    assert evaluate(tr(), view({"a", "b", "c", "d", "zzz"}), T0).outcome == "wait"


def test_quorum_needs_all_critical_and_the_fraction():
    rule = TriggerRule("quorum", quorum=0.6)
    assert evaluate(tr(rule, critical=("a",)), view({"b", "c", "d"}), T0).outcome == "wait"  # critical a missing
    assert evaluate(tr(rule, critical=("a",)), view({"a", "b"}), T0).outcome == "wait"  # 2 < ceil(3.0)
    assert evaluate(tr(rule, critical=("a",)), view({"a", "b", "c"}), T0).fires


def test_tiered_timeouts_relax_with_time_since_first_completion():
    rule = TriggerRule("tiered", tiers=(Tier(0, 5), Tier(3600, 4), Tier(7200, 3), Tier(14400, 1)))
    t = tr(rule)
    assert evaluate(t, view(set(FIVE)), T0).fires
    four = view({"a", "b", "c", "d"})
    assert evaluate(t, four, T0 + 3599).outcome == "wait"
    assert evaluate(t, four, T0 + 3600).fires
    three = view({"a", "b", "c"})
    assert evaluate(t, three, T0 + 3600).outcome == "wait"
    assert evaluate(t, three, T0 + 7200).fires
    one = view({"a"})
    assert evaluate(t, one, T0 + 14399).outcome == "wait"
    assert evaluate(t, one, T0 + 14400).fires


def test_tiered_fires_at_once_when_everything_is_complete_even_without_a_zero_tier():
    """Tiers relax the rule as time passes; they never make a complete round wait
    (the example's raw phase has tiers at 30 min and 2 h only)."""
    rule = TriggerRule("tiered", tiers=(Tier(1800, 4), Tier(7200, 3)))
    v = evaluate(tr(rule), view(set(FIVE)), T0)
    assert v.fires and v.reason == "all 5 expected processor(s) complete"
    assert evaluate(tr(rule), view({"a", "b", "c", "d"}), T0).outcome == "wait"


def test_tiered_still_requires_critical_processors():
    rule = TriggerRule("tiered", tiers=(Tier(0, 5), Tier(60, 1)))
    assert evaluate(tr(rule, critical=("e",)), view({"a"}), T0 + 100).outcome == "wait"


def test_failed_critical_processor_blocks_even_when_the_rule_is_met():
    rule = TriggerRule("quorum", quorum=0.5)
    v = evaluate(tr(rule, critical=("a",)), view({"b", "c", "d"}, failed={"a"}), T0)
    assert v.outcome == "blocked" and v.critical_failed == ("a",)


def test_failed_critical_that_later_succeeded_does_not_block():
    assert evaluate(tr(critical=("a",)), view(set(FIVE), failed=set()), T0).fires


def test_deadline_triggers_with_what_is_complete_when_critical_are_done():
    v = evaluate(tr(critical=("a",), deadline=600), view({"a", "b"}), T0 + 600)
    assert v.fires and v.deadline_passed and v.missing == ("c", "d", "e")


def test_deadline_expires_when_a_critical_processor_is_missing():
    v = evaluate(tr(critical=("a",), deadline=600), view({"b", "c"}), T0 + 600)
    assert v.outcome == "expired" and v.deadline_passed


def test_before_deadline_nothing_happens():
    assert evaluate(tr(deadline=600), view({"a"}), T0 + 599).outcome == "wait"


def test_debounce_round_fires_when_the_window_closes():
    t = tr(debounce=120)
    collecting = RoundView(frozenset(), frozenset({"c"}), frozenset(), T0, True)
    assert evaluate(t, collecting, T0 + 119).outcome == "wait"
    v = evaluate(t, collecting, T0 + 120)
    assert v.fires and "debounce" in v.reason


def test_debounce_round_with_only_failures_never_fires():
    t = tr(debounce=120)
    failed_only = RoundView(frozenset(), frozenset(), frozenset({"c"}), T0, True)
    assert not evaluate(t, failed_only, T0 + 500).fires


def test_evaluate_is_pure():
    t, v = tr(deadline=600), view({"a", "b"})
    assert evaluate(t, v, T0 + 5) == evaluate(t, v, T0 + 5)


def test_wake_times_list_debounce_tiers_and_deadline():
    rule = TriggerRule("tiered", tiers=(Tier(0, 5), Tier(3600, 4)))
    assert wake_times(tr(rule, deadline=7200), view({"a"})) == [T0, T0 + 3600, T0 + 7200]
    assert wake_times(tr(), RoundView(FIVE, frozenset(), frozenset(), None)) == []
