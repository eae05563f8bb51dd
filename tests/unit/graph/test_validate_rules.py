"""Each validation rule, fed a manifest broken in one place, reports the exact diagnostic.

The base project (tests/projects.py) is clean; every case applies one textual edit and
asserts the full ``file:line:col: severity: message (hint)`` lines that validate prints.
"""
from __future__ import annotations

import pytest

from framework.validation import validate
from projects import PROCESSORS as P, TOPICS as T, write_project

EXTRA_RAW = """  - name: lonely
    phase: raw
    entity: customer
    inputs: [{source: orders_landing}]
    output:
      table: lonely
      columns:
        - {name: day, type: DATE, mode: REQUIRED}
        - {name: customer_id, type: STRING, mode: REQUIRED}
    transform: {sql: sql/orders_raw.sql}
"""

CASES = {
    "unknown-input": (
        P.replace("inputs: [orders_raw]", "inputs: [order_raw]"), T,
        ["processors.yaml:53:14: error: processor 'customer_totals' has unknown input 'order_raw' (did you mean 'orders_raw'?)"],
    ),
    "alias-used-as-input": (
        P.replace("inputs: [orders_raw]", "inputs: [OrdersRawProcessor]"), T,
        ["processors.yaml:53:14: error: processor 'customer_totals' has unknown input 'OrdersRawProcessor' ('OrdersRawProcessor' is an alias: use the processor name 'orders_raw')"],
    ),
    "cycle": (
        P.replace("inputs: [orders_raw]", "inputs: [orders_raw, store_totals]").replace(
            "      - {processor: orders_raw, mapping: customer_store}", "      - {processor: orders_raw, mapping: customer_store}\n      - customer_totals"), T,
        ["processors.yaml:50:5: error: cycle: customer_totals -> store_totals -> customer_totals (break the cycle by removing one of these inputs)"],
    ),
    "input-from-later-phase": (
        P.replace("      - source: orders_landing\n", "      - source: orders_landing\n      - customer_totals\n"), T,
        ["processors.yaml:41:9: error: processor 'orders_raw' (phase raw) reads 'customer_totals' from a later phase (analytics) (move one of them, or read an earlier processor)",
         "processors.yaml:51:5: error: cycle: customer_totals -> orders_raw -> customer_totals (break the cycle by removing one of these inputs)"],
    ),
    "duplicate-processor": (
        P.replace("  - name: store_totals\n", "  - name: customer_totals\n"), T,
        ["processors.yaml:62:5: error: duplicate processor name 'customer_totals' (first declared at processors.yaml:50:5; rename one of them)"],
    ),
    "duplicate-output-table": (
        P.replace("      table: store_totals", "      table: customer_totals"), T,
        ["processors.yaml:68:14: error: processors 'customer_totals' and 'store_totals' both write shop_analytics.customer_totals (each table has exactly one writing processor)"],
    ),
    "entity-key-missing": (
        P.replace("        - {name: customer_id, type: STRING, mode: REQUIRED}\n        - {name: total", "        - {name: cust_id, type: STRING, mode: REQUIRED}\n        - {name: total"), T,
        ["processors.yaml:55:14: error: processor 'customer_totals': entity key 'customer_id' (customer) is not among its output columns (add a column 'customer_id' of type STRING)"],
    ),
    "change-column-missing": (
        P.replace("change_detection: {columns: [amount, store_id]}", "change_detection: {columns: [amount, store]}"), T,
        ["processors.yaml:48:23: error: processor 'orders_raw': change-detection column 'store' is not among its output columns (did you mean 'store_id'?)"],
    ),
    "compared-input-column-missing": (
        P.replace("inputs: [orders_raw]", "inputs: [{processor: orders_raw, compare: [amount, amt]}]"), T,
        ["processors.yaml:53:14: error: processor 'customer_totals' compares column 'amt' of 'orders_raw', which shop_raw.orders_raw does not have (did you mean 'amount'?)"],
    ),
    "key-type-mismatch": (
        P.replace("        - {name: customer_id, type: STRING, mode: REQUIRED}\n        - {name: total", "        - {name: customer_id, type: INT64, mode: REQUIRED}\n        - {name: total"), T,
        ["processors.yaml:53:14: error: processor 'customer_totals': key 'customer_id' is INT64 but input 'orders_raw' has it as STRING (declare the same type on both sides; numeric and string ids never join)",
         "processors.yaml:58:11: error: processor 'customer_totals': key 'customer_id' is INT64 but entity kind 'customer' declares STRING (make it STRING)"],
    ),
    "key-type-mismatch-source": (
        P.replace("      - {name: customer_id, type: STRING, mode: REQUIRED}\n      - {name: store_id, type: STRING}\n      - {name: amount",
                  "      - {name: customer_id, type: INT64, mode: REQUIRED}\n      - {name: store_id, type: STRING}\n      - {name: amount", 1), T,
        ["processors.yaml:15:9: error: source 'orders_landing': key 'customer_id' is INT64 but entity kind 'customer' declares STRING (make it STRING)",
         "processors.yaml:40:9: error: processor 'orders_raw': key 'customer_id' is STRING but input 'orders_landing' has it as INT64 (declare the same type on both sides; numeric and string ids never join)"],
    ),
    "expected-unknown": (
        P.replace("critical: [orders_raw]", "expected: [orders_raw, order_rawz]\n      critical: [orders_raw]"), T,
        ["processors.yaml:25:30: error: phase 'raw' expected processor 'order_rawz' does not exist (did you mean 'orders_raw'?)"],
    ),
    "expected-other-phase": (
        P.replace("critical: [orders_raw]", "expected: [orders_raw, customer_totals]\n      critical: [orders_raw]"), T,
        ["processors.yaml:25:30: error: phase 'raw' expected processor 'customer_totals', which belongs to phase 'analytics' (list it in phase 'analytics' instead)"],
    ),
    "alias-collision": (
        P.replace("aliases: [OrdersRawProcessor]", "aliases: [OrdersRawProcessor, customer_totals]"), T,
        ["processors.yaml:35:5: error: alias 'customer_totals' of processor 'orders_raw' is the name of another processor (remove or rename the alias)"],
    ),
    "topic-undeclared": (
        P.replace("trigger_topic: shop-analytics-trigger", "trigger_topic: shop-analytic-trigger"), T,
        ["processors.yaml:24:22: error: phase 'raw' trigger_topic references undeclared topic 'shop-analytic-trigger' (did you mean 'shop-analytics-trigger'?)"],
    ),
    "topic-no-producer-and-subscription-to-unpublished-topic": (
        P, T.replace("    producers: [orchestrator:raw]\n", ""),
        ["topics.yaml:10:5: error: topic 'shop-analytics-trigger' has no producer (list who publishes to it under 'producers', or delete it)",
         "topics.yaml:10:5: error: trigger topic 'shop-analytics-trigger' is not produced by orchestrator:raw (add 'orchestrator:raw' to its producers)",
         "topics.yaml:15:9: error: subscription 'shop-analytics-trigger-sub' is on topic 'shop-analytics-trigger', which nothing publishes"],
    ),
    "topic-no-consumer": (
        P, T + "  - name: shop-unused\n    contract: completion\n    producers: [phase:raw]\n",
        ["topics.yaml:27:5: error: topic 'shop-unused' has no consumer: messages would pile up unread (add a consumer and a subscription, or delete it)"],
    ),
    "dead-letter-missing": (
        P, T.replace("    dead_letter_topic: shop-dead-letter\n    subscriptions:\n      - {name: shop-analytics-trigger-sub",
                     "    subscriptions:\n      - {name: shop-analytics-trigger-sub"),
        ["topics.yaml:15:9: error: subscription 'shop-analytics-trigger-sub' has no dead-letter topic: poison messages would retry forever (set dead_letter_topic on the subscription or its topic)"],
    ),
    "dead-letter-undeclared": (
        P, T.replace("    consumers: [orchestrator:raw]\n    dead_letter_topic: shop-dead-letter", "    consumers: [orchestrator:raw]\n    dead_letter_topic: shop-dead-lettr"),
        ["topics.yaml:3:5: error: topic 'shop-raw-complete' references undeclared topic 'shop-dead-lettr' (did you mean 'shop-dead-letter'?)",
         "topics.yaml:9:9: error: subscription 'shop-raw-complete-orch' dead_letter_topic references undeclared topic 'shop-dead-lettr' (did you mean 'shop-dead-letter'?)"],
    ),
    "disabled-still-required": (
        P.replace("    aliases: [OrdersRawProcessor]\n", "    aliases: [OrdersRawProcessor]\n    enabled: false\n"), T,
        ["processors.yaml:23:7: error: phase 'raw' transition expects no processor: it could never fire (add processors to the phase or list them under 'expected')",
         "processors.yaml:25:18: error: phase 'raw' critical processor 'orders_raw', which is disabled: the phase would never complete (remove 'orders_raw' from 'critical' or enable it)",
         "processors.yaml:51:5: warning: processor 'customer_totals' reads only disabled processors",
         "processors.yaml:63:5: warning: processor 'store_totals' reads only disabled processors"],
    ),
    "orphan": (
        P.replace("critical: [orders_raw]", "expected: [orders_raw]\n      critical: [orders_raw]") + EXTRA_RAW, T,
        ["processors.yaml:75:5: warning: processor 'lonely' feeds nothing and no transition waits for it (use its output downstream, list it as expected, or remove it)"],
    ),
    "unreachable": (
        P.replace("    inputs: [orders_raw]\n", ""), T,
        ["processors.yaml:50:5: warning: processor 'customer_totals' in phase 'analytics' has no inputs: no upstream change ever reaches it (declare its inputs)"],
    ),
    "schema-unknown-key": (
        P.replace("    inputs: [orders_raw]\n", "    inptus: [orders_raw]\n"), T,
        ["processors.yaml:53:13: error: processors.1: unknown key 'inptus' (did you mean 'inputs'?)"],
    ),
    "yaml-syntax": (
        P.replace("    inputs: [orders_raw]\n", "    inputs: [orders_raw\n"), T,
        ["processors.yaml:54:11: error: YAML syntax error: did not find expected ',' or ']' (fix the indentation or quoting at this position)"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_reports_exact_diagnostic(case, tmp_path, monkeypatch):
    processors, topics, expected = CASES[case]
    write_project(tmp_path, processors, topics)
    monkeypatch.chdir(tmp_path)
    got = [str(d) for d in validate(tmp_path, check_sql=False).sorted()]
    assert got == expected


def test_clean_fixture_has_no_diagnostics(tmp_path, monkeypatch):
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert [str(d) for d in validate(tmp_path, check_sql=False).items] == []


def test_missing_transform_file_names_the_path(tmp_path, monkeypatch):
    write_project(tmp_path, P.replace("sql: sql/store_totals.sql", "sql: sql/store_total.sql"))
    monkeypatch.chdir(tmp_path)
    (diag,) = validate(tmp_path, check_sql=False).items
    assert str(diag).startswith("processors.yaml:73:16: error: processor 'store_totals': transform file 'sql/store_total.sql' does not exist")
    assert diag.code == "missing-transform"


def test_all_problems_are_collected_in_one_pass(tmp_path, monkeypatch):
    broken = (P.replace("inputs: [orders_raw]", "inputs: [order_raw]")
              .replace("trigger_topic: shop-analytics-trigger", "trigger_topic: nope")
              .replace("change_detection: {columns: [amount, store_id]}", "change_detection: {columns: [amount, store]}"))
    write_project(tmp_path, broken)
    monkeypatch.chdir(tmp_path)
    codes = sorted(d.code for d in validate(tmp_path, check_sql=False).errors)
    assert codes == ["change-column-missing", "undeclared-topic", "unknown-input"]


def test_subscription_filter_syntax_is_checked(tmp_path, monkeypatch):
    broken = T.replace("{name: shop-raw-complete-orch, consumer: orchestrator:raw, ack_deadline: 60s, max_delivery_attempts: 5}",
                       "{name: shop-raw-complete-orch, consumer: orchestrator:raw, filter: 'attributes.status = '}")
    write_project(tmp_path, P, broken)
    monkeypatch.chdir(tmp_path)
    (d,) = validate(tmp_path, check_sql=False).items
    assert d.code == "subscription-filter"
    assert str(d).startswith("topics.yaml:9:9: error: subscription 'shop-raw-complete-orch': ")


def test_more_than_four_cluster_columns_is_refused(tmp_path, monkeypatch):
    broken = P.replace("      table: customer_totals\n", "      table: customer_totals\n      cluster_by: [day, customer_id, total, day2, day3]\n")
    broken = broken.replace("        - {name: total, type: FLOAT64}\n    change_detection: {columns: [total]}",
                            "        - {name: total, type: FLOAT64}\n        - {name: day2, type: DATE}\n        - {name: day3, type: DATE}\n    change_detection: {columns: [total]}")
    write_project(tmp_path, broken)
    monkeypatch.chdir(tmp_path)
    (d,) = validate(tmp_path, check_sql=False).items
    assert str(d) == ("processors.yaml:55:14: error: processor 'customer_totals': 5 cluster columns; BigQuery clusters by at most 4 "
                      "(keep the 4 most selective: day, customer_id, total, day2)")


def test_fanout_attempts_above_the_task_subscription_limit_warn(tmp_path, monkeypatch):
    processors = P.replace("    transform: {sql: sql/store_totals.sql}\n",
                           "    transform: {sql: sql/store_totals.sql}\n    fanout: {task_topic: shop-tasks, workers: 2, max_attempts: 8}\n")
    topics = T + """  - name: shop-tasks
    contract: task
    producers: [processor:store_totals]
    consumers: [fanout:store_totals]
    dead_letter_topic: shop-dead-letter
    subscriptions:
      - {name: shop-tasks-workers, consumer: 'fanout:store_totals', max_delivery_attempts: 5}
"""
    write_project(tmp_path, processors, topics)
    monkeypatch.chdir(tmp_path)
    (d,) = validate(tmp_path, check_sql=False).items
    assert str(d) == ("processors.yaml:74:13: warning: processor 'store_totals': fanout.max_attempts 8 exceeds subscription "
                      "'shop-tasks-workers' max_delivery_attempts 5; the bus dead-letters a task first "
                      "(set fanout.max_attempts to at most 5 or raise the subscription's)")
