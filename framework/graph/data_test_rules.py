"""Validation rules of processors.yaml ``tests:`` (data tests), registered by
:mod:`framework.graph.rules`: columns of the output, a known relationships target and
field, accepted values typed like their column, one name per test of a processor. The JSON
Schema checked their shape; these check their meaning, located, with a did-you-mean."""
from __future__ import annotations

from typing import Any

from framework.manifest.diagnostics import did_you_mean


def check_data_tests(ctx: Any) -> None:
    """processors.yaml ``tests:``: columns of the output, a known relationships target and
    field, typed accepted values, one name per test of a processor."""
    p = ctx.project
    for proc in p.processors.values():
        if proc.tests and proc.output is None:
            ctx.diags.error("test-without-table", f"processor '{proc.name}' declares data tests but has no output table",
                            proc.tests[0].location, "declare an output, or move the tests to the processor that writes the table")
            continue
        seen: set[str] = set()
        for test in proc.tests:
            if test.name in seen:
                ctx.diags.error("duplicate-test", f"processor '{proc.name}': two data tests named '{test.name}'",
                                test.location, "give one of them a 'name'")
            seen.add(test.name)
            for col in test.columns:
                if proc.output.column(col) is None:
                    ctx.diags.error("test-column-missing", f"data test '{test.name}' of '{proc.name}': column '{col}' is not "
                                    f"among its output columns", test.location, did_you_mean(col, proc.output.column_names))
            if test.kind == "accepted_values" and test.columns and proc.output.column(test.columns[0]) is not None:
                col = proc.output.column(test.columns[0])
                numeric = col.type in ("INT64", "FLOAT64", "NUMERIC")
                bad = [v for v in test.values if isinstance(v, bool) != (col.type == "BOOL")
                       or (numeric and not isinstance(v, (int, float))) or (col.type == "STRING" and not isinstance(v, str))]
                if bad:
                    ctx.diags.error("test-value-type", f"data test '{test.name}' of '{proc.name}': value(s) {bad} are not "
                                    f"{col.type} like column '{col.name}'", test.location,
                                    "quote strings, leave numbers bare (`values: ['1', '2']` for a STRING column)")
            if test.kind == "relationships":
                up = p.resolve_processor(test.to or "")
                table = up.output if up is not None else (p.sources[test.to].table if test.to in p.sources else None)
                if table is None:
                    ctx.diags.error("unknown-test-target", f"data test '{test.name}' of '{proc.name}': 'to: {test.to}' is "
                                    "not a processor with an output or a source", test.location,
                                    did_you_mean(test.to or "", list(p.processors) + list(p.sources)))
                elif table.column(test.to_column or test.columns[0]) is None:
                    field = test.to_column or test.columns[0]
                    ctx.diags.error("test-column-missing", f"data test '{test.name}' of '{proc.name}': {table.fqn} has no "
                                    f"column '{field}'", test.location, did_you_mean(field, table.column_names) or "set 'field'")


__all__ = ["check_data_tests"]
