"""Pub/Sub subscription filters on message attributes: the grammar of ``topics.yaml``'s
``filter:``, owned by the manifest layer (the graph rules check it at validate time, the
local bus evaluates it at delivery time, and neither knows the other).

Google Pub/Sub lets a subscription receive only the messages whose attributes match a
filter; the others are acknowledged on its behalf and never delivered. The local bus must
accept the same filter text as ``topics.yaml`` declares for Pub/Sub, so a manifest behaves
the same on both backends. Supported subset (the whole Pub/Sub attribute grammar):

    attributes.KEY = "value"        attributes.KEY != "value"
    attributes:KEY                   (the attribute exists)
    hasPrefix(attributes.KEY, "p")
    NOT expr   or   -expr
    expr AND expr   expr OR expr   ( expr )

``KEY`` is an identifier (letters, digits, ``_`` and ``-``) or a double-quoted string.
Precedence: NOT binds tighter than AND, AND tighter than OR. A syntax error raises
:class:`BackendError` naming the position, at subscription creation time, so a bad filter
never silently drops messages.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Mapping

from framework.errors import BackendError

Predicate = Callable[[Mapping[str, str]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>!=|=|:|\(|\)|,|-|\.)
      | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            raise _error(text, pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value, m.start(kind)))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


def _error(text: str, pos: int, message: str) -> BackendError:
    return BackendError(
        f"invalid subscription filter {text!r} at column {pos + 1}: {message}",
        hint='use the Pub/Sub filter syntax: attributes.key = "value", attributes:key, '
        'hasPrefix(attributes.key, "p"), NOT, AND, OR and parentheses',
    )


class _Parser:
    """Recursive descent over the token list; builds a predicate closure."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self, kind: str, value: str | None = None) -> str:
        k, v, pos = self.peek()
        if k != kind or (value is not None and v != value):
            want = value or kind
            raise _error(self.text, pos, f"expected {want!r}, found {v or 'end of filter'!r}")
        self.i += 1
        return v

    def is_word(self, word: str) -> bool:
        k, v, _ = self.peek()
        return k == "word" and v == word

    def parse(self) -> Predicate:
        pred = self.or_expr()
        k, v, pos = self.peek()
        if k != "end":
            raise _error(self.text, pos, f"unexpected {v!r}")
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.is_word("OR"):
            self.i += 1
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda attrs: any(p(attrs) for p in parts)

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.is_word("AND"):
            self.i += 1
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda attrs: all(p(attrs) for p in parts)

    def unary(self) -> Predicate:
        k, v, _ = self.peek()
        if (k == "word" and v == "NOT") or (k == "op" and v == "-"):
            self.i += 1
            inner = self.unary()
            return lambda attrs: not inner(attrs)
        if k == "op" and v == "(":
            self.i += 1
            inner = self.or_expr()
            self.take("op", ")")
            return inner
        if k == "word" and v == "hasPrefix":
            self.i += 1
            self.take("op", "(")
            key = self.attribute_key()
            self.take("op", ",")
            prefix = self.take("string")
            self.take("op", ")")
            return lambda attrs: key in attrs and attrs[key].startswith(prefix)
        return self.comparison()

    def attribute_key(self) -> str:
        self.take("word", "attributes")
        self.take("op", ".")
        return self.key()

    def key(self) -> str:
        k, v, pos = self.peek()
        if k in ("word", "string"):
            self.i += 1
            return v
        raise _error(self.text, pos, f"expected an attribute name, found {v or 'end of filter'!r}")

    def comparison(self) -> Predicate:
        self.take("word", "attributes")
        k, v, pos = self.peek()
        if k == "op" and v == ":":
            self.i += 1
            key = self.key()
            return lambda attrs: key in attrs
        self.take("op", ".")
        key = self.key()
        k, op, pos = self.peek()
        if k != "op" or op not in ("=", "!="):
            raise _error(self.text, pos, f"expected '=' or '!=' after attributes.{key}")
        self.i += 1
        value = self.take("string")
        if op == "=":
            return lambda attrs: attrs.get(key) == value
        return lambda attrs: attrs.get(key) != value


@lru_cache(maxsize=256)
def compile_filter(text: str | None) -> Predicate:
    """Compile a filter once; ``None``/empty matches every message."""
    if text is None or not text.strip():
        return lambda attrs: True
    return _Parser(text).parse()


def matches(text: str | None, attributes: Mapping[str, str]) -> bool:
    """True when ``attributes`` pass the subscription filter ``text``."""
    return compile_filter(text)(attributes)


__all__ = ["compile_filter", "matches", "Predicate"]
