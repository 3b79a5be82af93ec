"""bounds.loads decides without walking what it decoded when the text allows: it must answer
exactly as decoding and walking everything (bounds.clean) does, for any JSON. (A number that is
not finite is refused while decoding, before the nesting is looked at: a text both too deep and
holding one may be refused for either; those numbers are tested on their own below.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bots.inbound import bounds

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ['"', "\\", "\x00", "]", "{", "\\u0000", "&<>", "\U0001f600", '\\"]', "a\x00b"]
)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | FINITE | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=30,
)


def _outcome(decode: Any) -> Any:
    try:
        return ("value", decode())
    except (bounds.TooDeep, bounds.NotFinite) as exc:
        return (type(exc).__name__, str(exc))


@settings(max_examples=400, deadline=None)
@given(value=JSON, max_depth=st.integers(min_value=1, max_value=6), ascii=st.booleans())
def test_loads_answers_as_decoding_and_walking_everything(
    value: Any, max_depth: int, ascii: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii)
    walked = _outcome(lambda: bounds.clean(json.loads(text), max_depth))
    assert _outcome(lambda: bounds.loads(text, max_depth)) == walked
    assert _outcome(lambda: bounds.loads(text.encode(), max_depth)) == walked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"title": "evil\\u0000title", "user\\u0000": 1}', {"title": "eviltitle", "user": 1}),
        ('["\\ud800"]', ["?"]),
        ('["\\ud83d\\ude00"]', ["\U0001f600"]),  # an escaped pair is one character
        ('["\\\\u0000"]', ["\\u0000"]),  # an escaped backslash, not a NUL
        ('{"a": "x]}", "b": [1, {"c": "\\"]"}]}', {"a": "x]}", "b": [1, {"c": '"]'}]}),
    ],
)
def test_escapes_and_brackets_inside_strings(text: str, expected: Any) -> None:
    assert bounds.loads(text, 3) == expected


@pytest.mark.parametrize("text", ["[NaN]", '{"x": Infinity}', "[-Infinity]", "[1e999]"])
def test_numbers_jsonb_cannot_hold_are_refused(text: str) -> None:
    with pytest.raises(bounds.NotFinite):
        bounds.loads(text, 8)


def test_nesting_is_counted_outside_strings_only() -> None:
    assert bounds.loads('[["[[[[[[[["]]', 2) == [["[[[[[[[["]]
    with pytest.raises(bounds.TooDeep, match="deeper than 2 levels"):
        bounds.loads("[[[]]]", 2)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_json_in_utf16_or_utf32_without_a_bom_is_read_as_json_loads_reads_it(
    encoding: str,
) -> None:
    assert bounds.loads('{"a": ["x"]}'.encode(encoding), 4) == {"a": ["x"]}


def test_a_str_holding_a_lone_surrogate_is_cleaned() -> None:
    assert bounds.loads('["\ud800"]', 4) == ["?"]


def test_a_key_given_twice_keeps_its_last_value_and_never_lets_more_through() -> None:
    assert bounds.loads('{"a": [[1]], "a": 1}', 3) == {"a": 1}
    with pytest.raises(bounds.TooDeep):  # the hidden value is too deep: refused all the same
        bounds.loads('{"a": [[[[1]]]], "a": 1}', 3)


def test_utf8_surrogates_and_other_encodings_are_decoded_as_before() -> None:
    assert bounds.loads(b'["\xed\xa0\x80"]', 4) == ["?"]  # a UTF-8 encoded lone surrogate
    assert bounds.loads('["x"]'.encode("utf-16"), 4) == ["x"]
    assert bounds.loads(b'\xef\xbb\xbf["x"]', 4) == ["x"]  # a UTF-8 byte order mark
