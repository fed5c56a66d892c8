"""The store's reading of PostgreSQL's text of a row (``node_listing._row_fields``): NULLs, empty
values, quotes, backslashes, commas, parentheses and spaces."""

from __future__ import annotations

import pytest

from beamwarden.server.store.node_listing import _row_fields


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("(a)", ["a"]),
        ("()", [None]),
        ("(,)", [None, None]),
        ('(a,"b c",,"")', ["a", "b c", None, ""]),
        ('("x""y\\\\z",t,)', ['x"y\\z', "t", None]),
        ('("(1, 2)",-5,"{""k"": ""v""}")', ["(1, 2)", "-5", '{"k": "v"}']),
        ('(,"",)', [None, "", None]),
    ],
)
def test_row_fields(text: str, fields: list[str | None]) -> None:
    assert _row_fields(text) == fields
