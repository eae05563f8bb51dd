"""Column-level lineage of a transform's SQL: what it reads, groups and joins by, and where
every output column comes from.

Why: pipectl's promise is that an incremental run equals a full recompute. Change detection
works from the manifest (inputs, mappings, keys); the transform's SQL does what it does.
When the two disagree (the SQL groups rows by a column the mapping does not use, normalises
the key, reads a column that does not exist, joins columns of different types), incremental
runs silently diverge. This module extracts *facts* from the SQL with sqlglot's optimizer
(``qualify`` against the declared input schemas, then scope traversal); the rules that
compare those facts with the manifest live in :mod:`framework.sql.lineage_rules`.

Facts depend only on the SQL text, the dialect and the schemas of the tables it reads, so
they are JSON data cached with the parse results (``framework.sql.parse_cache``): a repeated validate, and
the 10,000 generated processors that differ only in table names, analyse once.

Tables are labelled by the checker's placeholders (``__ref<i>.__t`` -> ``i``); a column
reference is ``[label, column]``.
"""
from __future__ import annotations

from typing import Any

# The entity filter, once parsed, is replaced by ``<column> = '<marker>'`` so that it stays in
# its scope (and can be traced) while qualify never sees the dialect's UNNEST spelling.
_FILTER_MARK = "__pipectl_entity_filter__"
_PLACEHOLDER = "__pipectl_key__"


def analyze(tree: Any, dialect: str, schema: dict[str, dict[str, str]], keys: frozenset[str] | None = None,
            fast: bool = True) -> dict[str, Any]:
    """Lineage facts of one parsed transform (the last statement's query).

    The tree is modified in place (the entity filter is rewritten): pass a tree nobody
    else reads. ``schema`` maps a placeholder index (``"0"``) to the declared columns and types of the
    table ``__ref<i>.__t``. ``keys``: output columns whose expression form is wanted (the
    entity keys; None: all), as forms cost an SQL generation each. Returns a JSON-able dict; ``{"error": ...}`` when sqlglot
    cannot qualify the query (the caller reports the processor as not analysed).

    ``fast``: skip sqlglot's ``qualify`` when the tree is already in the form it would
    produce (:func:`already_qualified`); the facts are the same either way (checked by
    tests/unit/sql/test_lineage_fast.py on every example transform and on both kinds of shape).
    """
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    if not isinstance(tree, exp.Query):
        return {"error": "the transform's last statement is not a query"}
    for node in list(tree.find_all(exp.In)):
        if node.args.get("unnest") is not None or (isinstance(node.args.get("query"), exp.Subquery)
                                                   and node.args["query"].find(exp.Unnest) is not None
                                                   and node.args["query"].find(exp.Placeholder, exp.Parameter) is not None):
            node.replace(exp.EQ(this=node.this.copy(), expression=exp.Literal.string(_FILTER_MARK)))
    root = build_scope(tree) if fast and already_qualified(tree) else None
    if root is not None and not _resolved(root):
        root = None
    if root is None:  # qualify: the slow, general path (a third of a transform's check)
        sg_schema = {f"__ref{i}": {"__t": dict(cols)} for i, cols in schema.items()}
        try:
            qualify(tree, schema=sg_schema, dialect=dialect, validate_qualify_columns=False,
                    quote_identifiers=False, identify=False, expand_stars=True,
                    allow_partial_qualification=True)  # unknown columns are facts to report, not exceptions
            root = build_scope(tree)
        except (SqlglotError, KeyError, ValueError, AttributeError) as exc:  # sqlglot raises these on shapes it cannot qualify
            return {"error": f"sqlglot cannot qualify it: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"}
    if root is None:
        return {"error": "no query scope"}
    return _Facts(exp, dialect, schema).collect(root, keys)


# Node types whose presence leaves sqlglot's ``qualify`` nothing to change once every column
# names its table: no stars to expand, no USING, no ordinals or alias references, no UNNEST,
# PIVOT or table functions, no column aliases on tables. Anything else takes the general path.
_PLAIN: frozenset[str] = frozenset({
    "Select", "Union", "Intersect", "Except", "From", "Join", "Where", "Group", "Having", "Alias", "TableAlias",
    "Table", "Column", "Identifier", "Literal", "Boolean", "Null", "Paren", "Neg", "Not", "And", "Or", "Xor",
    "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "Is", "In", "Between", "Like", "ILike", "Add", "Sub", "Mul", "Div", "Mod",
    "IntDiv", "DPipe", "Case", "If", "Coalesce", "Cast", "TryCast", "DataType", "DataTypeParam", "Parameter",
    "Placeholder", "Var", "With", "CTE", "Subquery", "Distinct", "Interval", "Window", "Order", "Ordered",
    "WindowSpec", "Tuple", "Nullif", "Greatest", "Least", "Round", "Sum", "Max", "Min", "Avg",
    "Count", "Abs", "Upper", "Lower", "Trim", "Concat", "Substring", "Floor", "Ceil", "Sqrt", "Pow", "Ln", "Exp",
    "Stddev", "StddevSamp", "StddevPop", "Variance", "CurrentTimestamp", "CurrentDate", "DateAdd", "DateSub",
    "DateDiff", "RowNumber", "Rank", "DenseRank", "Lag", "Lead", "FirstValue", "LastValue", "AnyValue",
    "CountIf", "SafeDivide", "ArrayAgg", "Length", "Log", "Sign", "Star",
})


def already_qualified(tree: Any) -> bool:
    """True when ``qualify`` would change nothing the facts read: every identifier lower case
    and unquoted (normalisation is a no-op), every table and derived table aliased without
    column aliases, every column ``alias.name``, every projection named, no star, USING,
    GROUP BY ordinal or ALL, no ORDER BY or DISTINCT ON on a SELECT (qualify rewrites those
    after a GROUP BY), and only node types of ``_PLAIN``."""
    from sqlglot import exp

    for node in tree.walk():
        name = type(node).__name__
        if name not in _PLAIN:
            return False
        if name == "Identifier":
            text = node.this
            if node.quoted or text != text.lower():
                return False
        elif name == "Column":
            if not node.table or node.args.get("db") is not None or isinstance(node.this, exp.Star):
                return False
        elif name == "Star":  # COUNT(*) stays; a projected star is expanded by qualify
            if not isinstance(node.parent, exp.Count):
                return False
        elif name == "Table":
            alias = node.args.get("alias")
            if alias is None or alias.args.get("columns") or node.args.get("joins") or node.args.get("pivots"):
                return False
        elif name == "Subquery":
            alias = node.args.get("alias")
            if isinstance(node.parent, (exp.From, exp.Join)) and (alias is None or alias.args.get("columns")):
                return False
        elif name == "CTE":
            if node.args["alias"].args.get("columns"):
                return False
        elif name == "Join":
            if node.args.get("using"):
                return False
        elif name == "Group":
            if any(node.args.get(k) for k in ("all", "rollup", "cube", "grouping_sets", "totals")):
                return False
            if any(isinstance(g, exp.Literal) for g in node.expressions):
                return False
        elif name in ("Select", "Union", "Intersect", "Except"):
            if node.args.get("order") is not None or (name == "Select" and (
                    (node.args.get("distinct") is not None and node.args["distinct"].args.get("on") is not None)
                    or any(not isinstance(s, (exp.Alias, exp.Column)) or not s.alias_or_name for s in node.selects))):
                return False
        elif name == "In":
            if node.args.get("unnest") is not None or node.args.get("query") is not None:
                return False
    return True


def _resolved(root: Any) -> bool:
    """Every column of every scope names a source of its own scope (no outer references)."""
    for scope in root.traverse():
        sources = scope.sources
        for col in scope.columns:
            if col.table not in sources:
                return False
    return True


class _Facts:
    def __init__(self, exp: Any, dialect: str, schema: dict[str, dict[str, str]]):
        from sqlglot import Dialect
        from sqlglot.optimizer.scope import Scope

        self.exp = exp
        self.Scope = Scope
        self.dialect = dialect
        self.schema = schema
        self.sqlglot_dialect = Dialect.get_or_raise(dialect)
        self.memo: dict[tuple[int, str], list] = {}
        self.forms: dict[tuple[int, str], Any] = {}
        self.labels: dict[int, str] = {}
        self.names: dict[int, list[str]] = {}

    # ---------------------------------------------------------------- helpers
    def label(self, table: Any) -> str:
        """The placeholder index of a ref()'d table (its SQL otherwise); asked for every column
        read, so kept per table node (the tree is not changed while facts are collected)."""
        found = self.labels.get(id(table))
        if found is None:
            db = table.db
            found = db[len("__ref"):] if db.startswith("__ref") and table.name == "__t" else table.sql(dialect=self.dialect)
            self.labels[id(table)] = found
        return found

    def text(self, node: Any) -> str:
        """``node.sql(dialect)`` without its deep copy when the node holds no query (the
        generator rewrites only queries; a copy per fact was a fifth of the analysis)."""
        if node.find(self.exp.Query) is None:
            return self.sqlglot_dialect.generate(node, copy=False)
        return node.sql(dialect=self.dialect)

    def branches(self, scope: Any) -> list:
        """The SELECT scopes of a scope (several for UNION ALL)."""
        if scope.set_operation_scopes:
            return [b for s in scope.set_operation_scopes for b in self.branches(s)]
        return [scope]

    def projections(self, scope: Any, name: str) -> list[tuple[Any, Any]]:
        branches = self.branches(scope)
        first = branches[0].expression
        names = self.names.get(id(first))
        if names is None:  # named_selects builds the list anew on every call
            names = self.names[id(first)] = list(first.named_selects)
        if name not in names:
            return []
        i = names.index(name)
        return [(b, b.expression.selects[i]) for b in branches if i < len(b.expression.selects)]

    def own(self, node: Any):
        """Nodes of ``node`` that belong to its own scope (not nested queries)."""
        exp = self.exp
        for n in node.walk(prune=lambda x: x is not node and isinstance(x, (exp.Select, exp.Subquery, exp.SetOperation))):
            yield n

    def columns(self, node: Any) -> list:
        exp = self.exp
        if isinstance(node, exp.Column):  # most operands: no walk
            return [] if isinstance(node.this, exp.Star) else [node]
        return [n for n in self.own(node) if isinstance(n, exp.Column) and not isinstance(n.this, exp.Star)]

    # ---------------------------------------------------------------- tracing
    def trace_column(self, scope: Any, col: Any) -> list:
        src = scope.sources.get(col.table)
        if isinstance(src, self.exp.Table):
            return [[self.label(src), col.name]]
        if src is not None and isinstance(src, self.Scope):
            return self.trace_output(src, col.name)
        return []

    def trace_output(self, scope: Any, name: str) -> list:
        key = (id(scope), name)
        if key not in self.memo:
            self.memo[key] = []
            out: list = []
            for branch, proj in self.projections(scope, name):
                for ref in self.trace_expr(branch, proj):
                    if ref not in out:
                        out.append(ref)
            self.memo[key] = out
        return self.memo[key]

    def trace_expr(self, scope: Any, node: Any) -> list:
        out: list = []
        for col in self.columns(node):
            for ref in self.trace_column(scope, col):
                if ref not in out:
                    out.append(ref)
        return out

    def direct(self, scope: Any, node: Any) -> list | None:
        """The base column an expression passes through unchanged (aliases and CTEs only)."""
        exp = self.exp
        node = node.this if isinstance(node, exp.Alias) else node
        if not isinstance(node, exp.Column):
            return None
        src = scope.sources.get(node.table)
        if isinstance(src, exp.Table):
            return [self.label(src), node.name]
        if src is None or not isinstance(src, self.Scope):
            return None
        found = {tuple(d) if d else None for d in (self.direct(b, p) for b, p in self.projections(src, node.name))}
        return list(found.pop()) if len(found) == 1 and None not in found else None

    def form(self, scope: Any, node: Any) -> list | None:
        """``[base ref, expression over the bare column]`` when the expression reads exactly
        one base column (``UPPER(TRIM(team_abbr))``), composed through CTEs; else None."""
        exp = self.exp
        node = node.this if isinstance(node, exp.Alias) else node
        cols = self.columns(node)
        if len(cols) != 1:
            return None
        col = cols[0]
        src = scope.sources.get(col.table)
        if isinstance(src, exp.Table):
            inner = [[self.label(src), col.name], col.name]
        elif src is not None and isinstance(src, self.Scope):
            key = (id(src), col.name)
            if key not in self.forms:
                forms = {(tuple(f[0]), f[1]) if f else None for f in (self.form(b, p) for b, p in self.projections(src, col.name))}
                self.forms[key] = None if len(forms) != 1 or None in forms else next(iter(forms))
            found = self.forms[key]
            if found is None:
                return None
            inner = [list(found[0]), found[1]]
        else:
            return None
        if isinstance(node, exp.Column):
            return inner
        copy = node.copy()
        for c in self.columns(copy):
            c.replace(exp.column(_PLACEHOLDER))
        # copy=False: ``copy`` is ours already; Expression.sql() would deep-copy it again
        return [inner[0], self.sqlglot_dialect.generate(copy, copy=False).replace(_PLACEHOLDER, inner[1])]

    def describe(self, scope: Any, node: Any, form: bool = True) -> dict[str, Any]:
        return {"bases": self.trace_expr(scope, node), "direct": self.direct(scope, node),
                "form": self.form(scope, node) if form else None}

    # ---------------------------------------------------------------- collection
    def collect(self, root: Any, keys: frozenset[str] | None = None) -> dict[str, Any]:
        exp = self.exp
        unknown: list = []
        groups: list = []
        equalities: list = []
        filters: list = []
        for scope in root.traverse():
            select = scope.expression
            if not isinstance(select, exp.Select):
                continue
            for col in scope.columns:
                if isinstance(col.this, exp.Star):
                    continue
                src = scope.sources.get(col.table)
                if isinstance(src, exp.Table):
                    label = self.label(src)
                    known = self.schema.get(label)
                    if known is not None and col.name not in known:
                        unknown.append([label, col.table, col.name, sorted(known)])
                elif src is not None and isinstance(src, self.Scope):
                    names = list(self.branches(src)[0].expression.named_selects)
                    if col.name not in names:
                        unknown.append([None, col.table, col.name, names])
                elif not col.table and col.name not in select.named_selects:
                    unknown.append([None, "", col.name, []])
            for g in (select.args.get("group") or exp.Group()).expressions:
                groups.append({**self.describe(scope, g, form=False), "sql": self.text(g)})
            conditions = [j.args.get("on") for j in select.args.get("joins") or [] if j.args.get("on") is not None]
            if select.args.get("where") is not None:
                conditions.append(select.args["where"].this)
            for cond in conditions:
                for node in self.own(cond):
                    if not isinstance(node, exp.EQ):
                        continue
                    if isinstance(node.expression, exp.Literal) and node.expression.this == _FILTER_MARK:
                        filters.append({**self.describe(scope, node.this), "sql": self.text(node.this)})
                        continue
                    left, right = self.describe(scope, node.this, False), self.describe(scope, node.expression, False)
                    if left["bases"] and right["bases"]:
                        equalities.append({"left": left, "right": right, "sql": self.text(node)})
        top = self.branches(root)
        outputs = list(top[0].expression.named_selects)
        kinds = tuple(getattr(exp, k) for k in _VOLATILE if hasattr(exp, k))
        star = any(isinstance(s, exp.Star) or s.find(exp.Star) for b in top for s in b.expression.selects)
        columns: dict[str, Any] = {}
        for name in outputs:
            descs = [self.describe(b, p, keys is None or name in keys) for b, p in self.projections(root, name)]
            bases: list = []
            for d in descs:
                bases += [r for r in d["bases"] if r not in bases]
            directs = {tuple(d["direct"]) if d["direct"] else None for d in descs}
            forms = {(tuple(d["form"][0]), d["form"][1]) if d["form"] else None for d in descs}
            volatile = any(p.find(*kinds) is not None for _, p in self.projections(root, name))
            columns[name] = {
                "bases": bases,
                "direct": list(directs.pop()) if len(directs) == 1 and None not in directs else None,
                "form": [list(f[0]), f[1]] if len(forms) == 1 and None not in forms and (f := next(iter(forms))) else None,
                "volatile": volatile,
            }
        return {"outputs": None if star else outputs, "columns": columns, "unknown": unknown,
                "groups": groups, "equalities": equalities, "filters": filters}


_VOLATILE = ("CurrentTimestamp", "CurrentDate", "CurrentDatetime", "CurrentTime", "Rand", "Uuid")


def volatile_outputs(sql: str, dialect: str) -> list[str]:
    """Output columns of a query computed from the clock or randomness (``processed_at``),
    followed through CTEs and subqueries: two runs of the same SQL never agree on them."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.scope import build_scope

    try:
        tree = [t for t in sqlglot.parse(sql, read=dialect) if t is not None][-1]
        root = build_scope(tree)
    except (SqlglotError, IndexError):
        return []
    if root is None:
        return []
    kinds = tuple(getattr(exp, k) for k in _VOLATILE if hasattr(exp, k))
    facts = _Facts(exp, dialect, {})
    seen: dict[tuple[int, str], bool] = {}

    def volatile(scope: Any, node: Any) -> bool:
        if node.find(*kinds) is not None:
            return True
        for col in facts.columns(node):
            src = scope.sources.get(col.table)
            if not isinstance(src, facts.Scope):
                continue
            key = (id(src), col.name)
            if key not in seen:
                seen[key] = False
                seen[key] = any(volatile(b, p) for b, p in facts.projections(src, col.name))
            if seen[key]:
                return True
        return False

    names = list(facts.branches(root)[0].expression.named_selects)
    return [n for n in names if any(volatile(b, p) for b, p in facts.projections(root, n))]
