"""The Pub/Sub attribute-filter subset accepted by the local bus."""
from __future__ import annotations

import pytest

from framework.manifest.bus_filter import compile_filter, matches
from framework.errors import BackendError

ATTRS = {"entity": "player", "phase": "raw", "game-date": "2024-01-15"}


@pytest.mark.parametrize("text, expected", [
    (None, True),
    ("", True),
    ('attributes.entity = "player"', True),
    ('attributes.entity = "team"', False),
    ('attributes.entity != "team"', True),
    ('attributes.missing != "x"', True),
    ("attributes:phase", True),
    ("attributes:missing", False),
    ('attributes."game-date" = "2024-01-15"', True),
    ('attributes.game-date = "2024-01-15"', True),
    ('attributes.entity = "player" AND attributes:phase', True),
    ('attributes.entity = "team" AND attributes:phase', False),
    ('attributes.entity = "team" OR attributes:phase', True),
    ('NOT attributes:phase', False),
    ('-attributes:missing', True),
    ('hasPrefix(attributes.game-date, "2024-")', True),
    ('hasPrefix(attributes.missing, "2024-")', False),
    ('(attributes.entity = "team" OR attributes.entity = "player") AND NOT attributes.phase = "analytics"', True),
    ('attributes.entity = "team" OR attributes.entity = "player" AND attributes:nothing', False),  # AND binds tighter
])
def test_filter_semantics(text, expected):
    assert matches(text, ATTRS) is expected


@pytest.mark.parametrize("text, column", [
    ('attributes.entity == "x"', 20),
    ("attributes.entity = 'x'", 21),
    ('entity = "x"', 1),
    ('attributes.entity = "x" AND', 28),
    ('(attributes:entity', 19),
])
def test_syntax_errors_name_the_column(text, column):
    with pytest.raises(BackendError, match=f"at column {column}"):
        compile_filter(text)
