"""Random YAML and mutated valid files never crash the validator: they parse, or they give a
ConfigError that names a line."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chains.config import ConfigError, parse_config

VALID = """\
variables:
  RELEASE_STREAM: stable
  TOKEN: {value: "x", masked: true}
downstream:
  - key: docs
    label: Docs
    project: acme/docs
    ref: main
    strategy: depend
    on: [merge_request, upstream]
    branches: "main release/* !release/old"
    if: 'target_branch =~ "release/*" && changes("docs/**")'
    depends_on: [api]
    soft_fail: false
    inherit: {variables: [RELEASE_STREAM]}
    params_file: ci/downstream.env
    cancel: detach
    variables: {ENVIRONMENT: staging}
  - key: api
    project: gitlab:acme/api
    interruptible: false
"""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12), inner, max_size=4),
    ),
    max_leaves=20,
)


def check(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as error:
        assert str(error)
        assert error.line is None or error.line >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents(document: object) -> None:
    check(yaml.safe_dump(document))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    check(text)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(0, 20), st.text(max_size=8))
def test_mutated_valid_files(start: int, length: int, replacement: str) -> None:
    check(VALID[:start] + replacement + VALID[start + length :])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VALID.splitlines()), st.data())
def test_dropped_or_duplicated_lines(line: str, data: st.DataObject) -> None:
    lines = VALID.splitlines()
    index = lines.index(line)
    if data.draw(st.booleans()):
        del lines[index]
    else:
        lines.insert(index, line)
    check("\n".join(lines))


def test_the_valid_file_is_valid() -> None:
    config = parse_config(VALID)
    assert [t.key for t in config.downstream] == ["docs", "api"]
