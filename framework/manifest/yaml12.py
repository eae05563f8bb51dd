"""The one YAML reader of pipectl: libyaml's event stream, read with the YAML 1.2 core schema.

Why one reader: manifests used to be parsed twice (a Rust parser for the data, PyYAML for
locations) and the two disagreed (``yes`` was a string for one and ``true`` for the other;
an ESC character passed one and broke the other). Here one pass over libyaml's events builds
the plain data *and* the location of every node, so what a value means and where it is can
never disagree.

Why events and not ``yaml.compose``: the composer links aliases to shared nodes, so a
recursive alias or an alias bomb is only found while expanding it (a ``RecursionError`` or
gigabytes). Reading events, every alias is checked against its anchor *before* anything is
shared: an anchor still open is a recursive alias; the expanded size of every anchored node
is known, so an expansion above the budget is refused at the alias that would exceed it.
The data under an alias is shared, never copied, so memory stays bounded by the file.

What is refused, each with a located error: bytes that are not UTF-8, characters YAML
forbids (NUL, BEL, ESC, ...), more than one document, explicit tags (``!foo``, ``!!int``),
undefined and recursive aliases, alias expansion over the budget, nesting deeper than
``MAX_DEPTH``, mapping keys that are not scalars, files over ``MAX_BYTES``.
"""
from __future__ import annotations

import gc
import re
import sys
from typing import Any, Callable

import yaml

try:  # libyaml's parser (C); the pure-Python one reads the same events, only slower
    from yaml import CBaseLoader as _EventSource
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import BaseLoader as _EventSource  # type: ignore[assignment]

MAX_BYTES = 64 * 1024 * 1024   # a manifest of 10,000 processors is about 6 MB
MAX_DEPTH = 64                  # the deepest manifest path is under 10 levels
ALIAS_BUDGET = 100_000          # nodes that aliases may add on top of the document's own

# error(code, message, line, column, hint): the caller turns it into a located diagnostic.
ReportError = Callable[[str, str, int, int, "str | None"], None]

# YAML 1.2 c-printable: TAB, LF, CR, x20-x7E, x85, xA0-xD7FF, xE000-xFFFD, x10000-x10FFFF.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
_CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "BS", 0x0B: "VT", 0x0C: "FF", 0x1B: "ESC", 0x7F: "DEL"}

# ------------------------------------------------------------------ YAML 1.2 core schema
_NULL = {"": None, "~": None, "null": None, "Null": None, "NULL": None}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)\Z")
_NUMBER_START = frozenset("0123456789+-.")


def core_scalar(text: str) -> Any:
    """A plain scalar's value under the YAML 1.2 core schema: only ``true``/``false`` are
    booleans (``yes``, ``on``, ``y`` are strings), only ``null``/``~``/empty are null;
    ``1_000``, ``0777`` octal and sexagesimal ``1:30`` are not YAML 1.1 numbers here."""
    if text in _NULL:
        return None
    value = _BOOL.get(text)
    if value is not None:
        return value
    if text[0] in _NUMBER_START:
        if _INT.match(text):
            return int(text)
        if _FLOAT.match(text):
            return float(text)
        if _INF.match(text):
            return float("-inf") if text[0] == "-" else float("inf")
        if _NAN.match(text):
            return float("nan")
        if _OCT.match(text):
            return int(text[2:], 8)
        if _HEX.match(text):
            return int(text[2:], 16)
    return text


YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})


# ------------------------------------------------------------------ bytes -> text
def decode(raw: bytes, error: ReportError) -> str | None:
    """UTF-8 text (an optional BOM dropped), or ``None`` after a located error."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        error("encoding", "the file is UTF-16; pipectl reads manifests as UTF-8", 1, 1, "save the file as UTF-8")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        error("encoding", f"byte 0x{raw[exc.start]:02X} is not valid UTF-8", line, column,
              "save the file as UTF-8 (a Latin-1 or Windows-1252 editor setting writes such bytes)")
        return None


def forbidden_characters(text: str, error: ReportError, limit: int = 20) -> bool:
    """Report characters YAML does not allow anywhere (control characters); True if any."""
    found = 0
    for match in _FORBIDDEN.finditer(text):
        pos = match.start()
        code = ord(match.group())
        name = _CONTROL_NAMES.get(code, "control character")
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        error("yaml-character", f"character U+{code:04X} ({name}) is not allowed in YAML", line, column,
              "delete it; write it as an escape in a double-quoted string if you need it")
        found += 1
        if found >= limit:
            break
    return found > 0


# ------------------------------------------------------------------ events -> data
class _Open:
    """A mapping or sequence being built: its value, path, expanded size, pending key."""

    __slots__ = ("value", "path", "size", "anchor", "key", "key_line", "key_column", "is_map")

    def __init__(self, value: Any, path: tuple, anchor: str | None, is_map: bool):
        self.value = value
        self.path = path
        self.size = 1
        self.anchor = anchor
        self.key: Any = _NO_KEY
        self.key_line = self.key_column = 0
        self.is_map = is_map


_NO_KEY = object()
_Scalar, _Alias = yaml.ScalarEvent, yaml.AliasEvent
_MapStart, _SeqStart = yaml.MappingStartEvent, yaml.SequenceStartEvent
_MapEnd, _SeqEnd, _DocStart = yaml.MappingEndEvent, yaml.SequenceEndEvent, yaml.DocumentStartEvent


class _Refused(Exception):
    """Stop reading: nothing after this point can be trusted (reported already)."""


def parse(text: str, error: ReportError, alias_budget: int = ALIAS_BUDGET, locations: bool = True) -> tuple[Any, dict] | None:
    """Build plain data and ``{json path: (line, column)}`` from one YAML document.

    ``locations=False`` leaves the table empty: a path tuple and a position per node were
    most of the memory a 10,000-processor manifest took while loading (the loader rebuilds
    the table from the text only when a diagnostic is printed). Problems are reported the
    same either way: they carry the parser's own marks.

    Returns ``None`` when nothing trustworthy could be built (syntax error, second document,
    nesting too deep, an undefined, recursive or too costly alias); an empty file is
    ``(None, {})``. Refusals that leave the rest meaningful (a tag, a duplicate key) report
    an error and keep the value, so one run shows every problem.
    """
    collecting = gc.isenabled()
    gc.disable()  # building ~10^6 containers would run the cycle collector hundreds of times; none form cycles
    try:
        return _parse(text, error, alias_budget, locations)
    finally:
        if collecting:
            gc.enable()


def _parse(text: str, error: ReportError, alias_budget: int, locations: bool = True) -> tuple[Any, dict] | None:
    reader = _Reader(error, alias_budget, locations)
    get_event = _EventSource(text).get_event
    stack, table, scalar, no_key = reader.stack, reader.table, _Scalar, _NO_KEY
    # one object per distinct text: a manifest repeats the same keys, types and column names
    # thousands of times, and shared strings keep the resolved model small and unfragmented
    intern = sys.intern
    try:
        while True:  # hot loop: one iteration per YAML event (600,000 for 10,000 processors)
            event = get_event()
            if event is None:
                break
            # fast path, inlined: an untagged, unanchored scalar as a key or a new value;
            # everything else (and every refusal) goes through _Reader.feed
            if type(event) is scalar and event.tag is None and event.anchor is None and stack:
                parent = stack[-1]
                mark = event.start_mark
                if parent.is_map:
                    key = parent.key
                    if key is no_key:
                        parent.key = intern(event.value)
                        parent.key_line, parent.key_column = mark.line + 1, mark.column + 1
                        continue
                    if key != "<<" and key not in parent.value:
                        value = core_scalar(event.value) if event.implicit[0] and not event.style else event.value
                        if type(value) is str:
                            value = intern(value)
                        if locations:
                            table[parent.path + (key,)] = (mark.line + 1, mark.column + 1)
                        parent.value[key] = value
                        parent.size += 1
                        parent.key = no_key
                        continue
                else:
                    value = core_scalar(event.value) if event.implicit[0] and not event.style else event.value
                    if type(value) is str:
                        value = intern(value)
                    if locations:
                        table[parent.path + (len(parent.value),)] = (mark.line + 1, mark.column + 1)
                    parent.value.append(value)
                    parent.size += 1
                    continue
            reader.feed(event)
    except _Refused:
        return None
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        error("yaml-syntax", f"YAML syntax error: {problem}",
              (m.line + 1) if m else 1, (m.column + 1) if m else 1, "fix the indentation or quoting at this position")
        return None
    except yaml.YAMLError as exc:  # a reader error without a mark (characters are screened before)
        error("yaml-syntax", f"YAML error: {exc}", 1, 1, "fix the YAML")
        return None
    if reader.broken:
        return None
    return (reader.root[0] if reader.root else None), reader.table


class _Reader:
    """The state of one read: open collections, anchors, the alias budget, the table."""

    def __init__(self, error: ReportError, alias_budget: int, locations: bool = True):
        self.error = error
        self.budget = alias_budget
        self.table: dict = {}
        self.locations = locations
        self.anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, expanded size)
        self.open_anchors: set[str] = set()
        self.stack: list[_Open] = []
        self.root: list[Any] = []
        self.spent = 0          # nodes added by aliases so far
        self.documents = 0
        self.broken = False     # a refused alias: report every one, build nothing

    def feed(self, event: Any) -> None:
        kind = type(event)
        stack = self.stack
        parent = stack[-1] if stack else None
        if kind is _Scalar:
            mark = event.start_mark
            if parent is not None and parent.is_map and parent.key is _NO_KEY:
                if event.tag is not None and not event.implicit[0] and not event.implicit[1]:
                    _tag(event.tag, mark.line + 1, mark.column + 1, self.error)
                parent.key = event.value
                parent.key_line, parent.key_column = mark.line + 1, mark.column + 1
                return
            implicit = event.implicit
            if event.tag is not None and not implicit[0] and not implicit[1]:
                _tag(event.tag, mark.line + 1, mark.column + 1, self.error)
            value = core_scalar(event.value) if implicit[0] and not event.style else event.value
            if event.anchor is not None:
                self.anchors[event.anchor] = (value, 1)
            self._attach(parent, value, 1, (mark.line + 1, mark.column + 1))
        elif kind is _MapEnd or kind is _SeqEnd:
            done = stack.pop()
            if done.anchor is not None:
                self.anchors[done.anchor] = (done.value, done.size)
                self.open_anchors.discard(done.anchor)
            self._attach(stack[-1] if stack else None, done.value, done.size, None, done.path)
        elif kind is _MapStart or kind is _SeqStart:
            mark = event.start_mark
            line, column = mark.line + 1, mark.column + 1
            self._no_key(parent, line, column)
            if len(stack) >= MAX_DEPTH:
                self.error("yaml-depth", f"nesting deeper than {MAX_DEPTH} levels", line, column, "flatten the structure")
                raise _Refused
            if event.tag is not None and not event.implicit:
                _tag(event.tag, line, column, self.error)
            path = _child_path(parent)
            if self.locations:
                self.table[path] = (line, column)
            if event.anchor is not None:
                self.open_anchors.add(event.anchor)
            stack.append(_Open({} if kind is _MapStart else [], path, event.anchor, kind is _MapStart))
        elif kind is _Alias:
            mark = event.start_mark
            line, column = mark.line + 1, mark.column + 1
            self._no_key(parent, line, column)
            self._attach(parent, *self._alias(event.anchor, line, column), (line, column))
        elif kind is _DocStart:
            self.documents += 1
            if self.documents > 1:
                m = event.start_mark
                self.error("yaml-documents", "a second YAML document ('---') in a manifest", m.line + 1, m.column + 1,
                           "a manifest is one document: remove the '---' and what follows, or merge it into the first")
                raise _Refused

    def _no_key(self, parent: _Open | None, line: int, column: int) -> None:
        if parent is not None and parent.is_map and parent.key is _NO_KEY:
            self.error("yaml-key", "a mapping key must be a plain name, not a list, mapping or alias", line, column,
                       "write the key as text")
            raise _Refused

    def _alias(self, name: str, line: int, column: int) -> tuple[Any, int]:
        """The anchored value and its expanded size, checked before it is shared."""
        if name in self.open_anchors:
            self.error("yaml-alias", f"recursive alias '*{name}': the anchor contains itself", line, column,
                       "an anchor cannot refer to itself; write the value out")
            self.broken = True
            return None, 1
        if name not in self.anchors:
            self.error("yaml-alias", f"alias '*{name}' refers to no anchor defined before it", line, column,
                       f"define '&{name}' earlier in the file, or write the value out")
            self.broken = True
            return None, 1
        value, size = self.anchors[name]
        self.spent += size
        if self.spent > self.budget:
            self.error("yaml-alias", f"alias '*{name}' would expand the document past {self.budget:,} extra nodes "
                       "(an alias expansion bomb?)", line, column, "write the values out or use fewer nested aliases")
            raise _Refused
        return value, size

    def _attach(self, parent: _Open | None, value: Any, size: int, position: tuple | None, path: tuple | None = None) -> None:
        """Put a finished value into its parent (or the root) and record where it was."""
        if parent is None:
            if position is not None and self.locations:
                self.table[()] = position
            self.root.append(value)
            return
        parent.size += size
        if parent.is_map:
            key = parent.key
            parent.key = _NO_KEY
            if position is not None and self.locations:
                self.table[parent.path + (key,)] = position
            if key == "<<":
                self.error("yaml-merge", "YAML merge keys ('<<') are not supported", parent.key_line, parent.key_column,
                           "write the keys out")
                return
            if key in parent.value:
                self.error("duplicate-key", f"duplicate key '{key}' in mapping", parent.key_line, parent.key_column,
                           "remove one of them; YAML would silently keep the last")
            parent.value[key] = value
        else:
            if position is not None and self.locations:
                self.table[parent.path + (len(parent.value),)] = position
            parent.value.append(value)


def _tag(tag: str, line: int, column: int, error: ReportError) -> None:
    shown = tag.replace("tag:yaml.org,2002:", "!!")
    error("yaml-tag", f"YAML tag '{shown}' is not supported in manifests", line, column,
          "remove the tag; quote a value to make it text")


def _child_path(parent: _Open | None) -> tuple:
    if parent is None:
        return ()
    if parent.is_map:
        return parent.path + (parent.key,)
    return parent.path + (len(parent.value),)
