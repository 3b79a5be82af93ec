"""Pacing shared through the database: spacing, per-minute caps, blocks."""

from __future__ import annotations

import pytest

from bots import throttle
from bots.forges.base import Budget

pytestmark = pytest.mark.django_db


def test_spacing_puts_requests_one_second_apart() -> None:
    budget = [Budget("t:writes", spacing=1.0)]
    times = [throttle.reserve(budget, now=1000.0) for _ in range(5)]
    assert times == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]


def test_per_minute_cap_waits_for_the_window() -> None:
    budget = [Budget("t:create", per_minute=3)]
    times = [throttle.reserve(budget, now=500.0) for _ in range(7)]
    assert times == [500.0, 500.0, 500.0, 560.0, 560.0, 560.0, 620.0]


def test_all_budgets_must_agree() -> None:
    budgets = [Budget("t:a", spacing=1.0), Budget("t:b", per_minute=2)]
    times = [throttle.reserve(budgets, now=0.0) for _ in range(4)]
    assert times == [0.0, 1.0, 60.0, 61.0]


def test_separate_keys_do_not_wait_for_each_other() -> None:
    assert throttle.reserve([Budget("p1", per_minute=1)], now=10.0) == 10.0
    assert throttle.reserve([Budget("p2", per_minute=1)], now=10.0) == 10.0


def test_block_holds_everything_back() -> None:
    budget = [Budget("t:blocked", spacing=1.0)]
    throttle.block(budget, 30)
    import time

    assert throttle.reserve(budget) >= time.time() + 29
