"""Parameter parsing (Grape-style bracketed form keys)."""

from __future__ import annotations

from sandbox.web import Request, nest


def test_nested_form_keys() -> None:
    assert nest(
        [
            ("variables[0][key]", "A"),
            ("variables[0][value]", "1"),
            ("variables[1][key]", "B"),
            ("variables[1][value]", "2"),
        ]
    ) == {"variables": [{"key": "A", "value": "1"}, {"key": "B", "value": "2"}]}
    assert nest([("variables[VAR1]", "v1"), ("ref", "main")]) == {
        "variables": {"VAR1": "v1"},
        "ref": "main",
    }
    assert nest([("scope[]", "failed"), ("scope[]", "canceled")]) == {
        "scope": ["failed", "canceled"]
    }


def test_body_wins_over_query() -> None:
    r = Request(
        "POST", "/x", "ref=main&token=q", {"content-type": "application/json"}, b'{"token": "b"}'
    )
    assert r.params == {"ref": "main", "token": "b"}
