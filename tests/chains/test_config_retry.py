"""`retry:` in `.baton.yml`: GitLab's `retry: {max, when}` (and `retry: 2`), table-driven;
errors name the line and the field."""

from __future__ import annotations

import pytest

from chains.config import ConfigError, parse_config
from chains.retrying import RetryPolicy, matching


def _one(retry: str) -> str:
    return f"downstream:\n  - project: acme/api\n    retry: {retry}\n"


@pytest.mark.parametrize(
    ("retry", "policy"),
    [
        ("2", RetryPolicy(max=2, when=("always",))),
        ("0", RetryPolicy(max=0, when=("always",))),
        ("{max: 1}", RetryPolicy(max=1, when=("always",))),
        ("{max: 3, when: runner_system_failure}", RetryPolicy(3, ("runner_system_failure",))),
        (
            "{max: 2, when: [runner_system_failure, timed_out, runner_system_failure]}",
            RetryPolicy(2, ("runner_system_failure", "timed_out")),
        ),
        ("{max: 1, when: [always]}", RetryPolicy(1, ("always",))),
    ],
)
def test_good_retry(retry: str, policy: RetryPolicy) -> None:
    (target,) = parse_config(_one(retry)).downstream
    assert target.retry == policy


def test_no_retry_by_default() -> None:
    (target,) = parse_config("downstream:\n  - project: acme/api\n").downstream
    assert target.retry == RetryPolicy(max=0)


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (_one("4"), 3, "downstream[0].retry", "from 0 to 3"),
        (_one("-1"), 3, "downstream[0].retry", "from 0 to 3"),
        (_one("two"), 3, "downstream[0].retry", "from 0 to 3"),
        (_one("[1, 2]"), 3, "downstream[0].retry", "must be a mapping"),
        (_one("{when: always}"), 3, "downstream[0].retry.max", "needs max"),
        (_one("{max: 9}"), 3, "downstream[0].retry.max", "from 0 to 3"),
        (_one("{max: 1, on: x}"), 3, "downstream[0].retry.on", "retry takes max and when"),
        (_one("{max: 1, when: flaky}"), 3, "downstream[0].retry.when", "'flaky' is not"),
        (
            "downstream:\n  - project: acme/api\n    retry:\n      max: 2\n      when:\n"
            "        - timed_out\n        - cosmic_rays\n",
            7,
            "downstream[0].retry.when[1]",
            "'cosmic_rays' is not a failure reason",
        ),
        (_one("{max: 1, when: {a: b}}"), 3, "downstream[0].retry.when", "must be a list"),
        (_one("{max: 1, max: 2}"), 3, "downstream[0].retry.max", "appears twice"),
    ],
)
def test_bad_retry(text: str, line: int, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert (caught.value.line, caught.value.field) == (line, field)
    assert words in caught.value.reason


@pytest.mark.parametrize(
    ("when", "reasons", "matched"),
    [
        (("always",), ["script_failure"], "script_failure"),
        ((), ["failure"], "failure"),
        (
            ("runner_system_failure",),
            ["script_failure", "runner_system_failure"],
            "runner_system_failure",
        ),
        (("runner_system_failure",), ["script_failure"], ""),
        # one file for both forges: GitLab's word matches GitHub's and back
        (("stuck_or_timeout_failure",), ["timed_out"], "timed_out"),
        (("timed_out",), ["stuck_or_timeout_failure"], "stuck_or_timeout_failure"),
        (("script_failure",), ["failure"], "failure"),
        (("timed_out",), ["failure"], ""),
    ],
)
def test_when_matches_the_forges_reasons(
    when: tuple[str, ...], reasons: list[str], matched: str
) -> None:
    assert matching(when, reasons) == matched


def _schema() -> dict[str, object]:
    import json
    from pathlib import Path

    return json.loads(
        (Path(__file__).resolve().parents[2] / "schemas" / "baton-yml.schema.json").read_text()
    )


@pytest.mark.parametrize(
    ("retry", "valid"),
    [
        ("2", True),
        ("{max: 2, when: [runner_system_failure, timed_out]}", True),
        ("{max: 1, when: always}", True),
        ("4", False),
        ("{when: always}", False),
        ("{max: 1, when: flaky}", False),
        ("{max: 1, on: x}", False),
    ],
)
def test_the_schema_agrees_with_the_parser(retry: str, valid: bool) -> None:
    import jsonschema
    import yaml

    data = yaml.safe_load(_one(retry))
    parsed = True
    try:
        parse_config(_one(retry))
    except ConfigError:
        parsed = False
    schema_ok = True
    try:
        jsonschema.validate(data, _schema())
    except jsonschema.ValidationError:
        schema_ok = False
    assert (parsed, schema_ok) == (valid, valid)
