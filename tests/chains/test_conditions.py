"""`if:` conditions: the grammar, its errors, and evaluation without eval."""

from __future__ import annotations

import pytest

from chains.conditions import ConditionError, Context, branch_matches, glob_match, parse_condition

CONTEXT = Context(
    branch="feature/search",
    target_branch="release/1.2",
    source="merge_request",
    message="Fix search [deploy]",
    title="Fix search",
    author="alice",
    labels=("backend", "urgent"),
    variables={"RELEASE_STREAM": "stable", "EMPTY": ""},
    changed_files=lambda: ["docs/guide/index.md", "src/app.py"],
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('target_branch == "release/1.2"', True),
        ('target_branch != "main"', True),
        ('target_branch =~ "release/*"', True),
        ('branch =~ "release/*"', False),
        ('branch !~ "release/**"', True),
        ('"urgent" in labels', True),
        ('"docs" in labels', False),
        ('"[deploy]" in message', True),
        ('source == "merge_request" && author == "alice"', True),
        ('source == "push" || $RELEASE_STREAM == "stable"', True),
        ("!(source == 'push')", True),
        ("$EMPTY", False),
        ("$RELEASE_STREAM", True),
        ('${RELEASE_STREAM} == "stable"', True),
        ("$UNKNOWN", False),
        ('changes("docs/**")', True),
        ('changes("*.md")', False),
        ('changes("src/*.py", "lib/**")', True),
        ('changes("lib/**")', False),
        ('title == "Fix \\"quoted\\""', False),
    ],
)
def test_evaluation(text: str, expected: bool) -> None:
    assert parse_condition(text).evaluate(CONTEXT) is expected


def test_changes_asks_for_files_only_when_needed() -> None:
    asked: list[bool] = []

    def files() -> list[str]:
        asked.append(True)
        return []

    context = Context(branch="x", changed_files=files)
    assert parse_condition('branch == "x" || changes("a")').evaluate(context)
    assert asked == []
    assert not parse_condition('changes("a")').evaluate(context)
    assert asked == [True]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('branch = "x"', "column 8"),
        ('branch == "x" &&', "ends too early"),
        ("(branch", "ends too early"),
        ('colour == "red"', "unknown name 'colour'"),
        ('labels == "x"', "labels can only be used with `in`"),
        ("changes(docs)", "expected a quoted string"),
        ('branch == "x")', "unexpected ')'"),
        ("__import__('os')", "unknown name"),
        ("!" * 60 + "branch", "nested too deeply"),
        ("x" * 1001, "longer than 1000"),
    ],
)
def test_errors_say_where(text: str, words: str) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(text)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("patterns", "branch", "expected"),
    [
        ((), "anything", True),
        (("main",), "main", True),
        (("main", "release/*"), "release/1.2", True),
        (("release/*", "!release/old"), "release/old", False),
        (("release/*",), "release/1.2/hotfix", False),
        (("release/**",), "release/1.2/hotfix", True),
        (("!wip/*",), "main", True),
        (("!wip/*",), "wip/x", False),
    ],
)
def test_branch_patterns(patterns: tuple[str, ...], branch: str, expected: bool) -> None:
    assert branch_matches(patterns, branch) is expected


def test_glob() -> None:
    assert glob_match("a?c", "abc") and not glob_match("a?c", "a/c")
