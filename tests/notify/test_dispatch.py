"""Which events a chain reached, who is told, one row per (chain, event, channel), no storm."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from chains.config import NOTIFY_EVENTS
from chains.models import Chain, Grant, Run, Team
from chains.status import Status
from notify import dispatch
from notify.models import ChainNotify, Channel, Event, Notification, Subscription
from tests import factories as f

pytestmark = pytest.mark.django_db

AGO = timezone.now() - timedelta(minutes=2)


def channel(name: str = "release-chat", **fields: Any) -> Channel:
    return Channel.objects.create(
        name=name, url="json://127.0.0.1:9/_sandbox/chat/release", **fields
    )


def subscribe(to: Channel, projects: str = "acme/*", events: list[str] | None = None, **kw: Any):
    return Subscription.objects.create(channel=to, projects=projects, events=events or [], **kw)


def ended(chain: Chain, status: str = Status.FAILED) -> Chain:
    Chain.objects.filter(pk=chain.pk).update(status=status, finished_at=AGO)
    chain.refresh_from_db()
    return chain


def failed_run(chain: Chain, key: str, **fields: Any) -> Run:
    run = f.run(chain, key, status=Status.FAILED, **fields)
    run.failed_jobs = {
        "attempt": run.attempt,
        "pipeline": run.remote_id,
        "jobs": [
            {
                "name": "rspec",
                "stage": "test",
                "reason": "script_failure",
                "url": f"http://forge/{key}/-/jobs/1",
                "step": "",
            }
        ],
    }
    run.save()
    return run


def settle(chain: Chain, capture: Any) -> tuple[float | None, list[int]]:
    sent: list[int] = []
    with capture(execute=True):
        wait = dispatch.chain_settled(chain.pk, sent.append)
    return wait, sent


def test_the_event_names_are_those_baton_yml_accepts() -> None:
    assert tuple(Event.values) == NOTIFY_EVENTS


def test_a_failed_chain_sends_one_message_naming_the_failed_job_and_why(
    django_capture_on_commit_callbacks: Any,
) -> None:
    to = channel()
    subscribe(to)
    chain = f.chain("acme/app", number=12, title="Fix the thing")
    failed_run(chain, "api", label="API tests")
    f.run(chain, "docs", status=Status.SUCCESS)
    ended(chain)

    wait, sent = settle(chain, django_capture_on_commit_callbacks)
    again, sent_again = settle(chain, django_capture_on_commit_callbacks)

    assert wait is None and again is None
    row = Notification.objects.get()
    assert sent == [row.pk] and sent_again == []
    assert (row.event, row.channel, row.outcome) == (Event.CHAIN_FAILED, to, "pending")
    assert row.title == "Chain failed: acme/app !12 “Fix the thing”"
    assert "API tests (acme/api): rspec (script failure) http://forge/api/-/jobs/1" in row.body
    assert "docs" not in row.body
    assert row.body.endswith(f"{settings.BATON_BASE_URL}/chains/{chain.pk}/")


def test_fifty_failed_targets_make_one_message_listing_ten_and_the_rest_counted(
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscribe(channel())
    chain = f.chain("acme/app")
    for n in range(50):
        failed_run(chain, f"t{n:02d}")
    ended(chain)

    _, sent = settle(chain, django_capture_on_commit_callbacks)

    assert len(sent) == 1
    body = Notification.objects.get().body
    assert "50 runs failed:" in body
    assert "t09 (acme/t09)" in body and "t10 (acme/t10)" not in body
    assert "… and 40 more" in body


def test_a_channel_told_by_a_subscription_and_by_baton_yml_gets_one_message(
    django_capture_on_commit_callbacks: Any,
) -> None:
    to = channel()
    subscribe(to)
    chain = ended(f.chain("acme/app"))
    ChainNotify.objects.create(chain=chain, entries=[{"channel": to.name, "events": []}])
    _, sent = settle(chain, django_capture_on_commit_callbacks)
    assert len(sent) == 1


def test_recovered_is_green_after_red_on_the_same_change(
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscribe(channel())
    red = ended(f.chain("acme/app", number=5, age=timedelta(hours=1)))
    green = ended(f.chain("acme/app", number=5, on=red.forge), Status.SUCCESS)
    other = ended(f.chain("acme/app", number=6, on=red.forge), Status.SUCCESS)

    settle(green, django_capture_on_commit_callbacks)
    settle(other, django_capture_on_commit_callbacks)

    assert list(Notification.objects.values_list("chain", "event")) == [
        (green.pk, Event.CHAIN_RECOVERED)
    ]


def test_a_retried_chain_that_turns_green_has_recovered(
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscribe(channel())
    chain = ended(f.chain("acme/app"))
    settle(chain, django_capture_on_commit_callbacks)
    ended(chain, Status.SUCCESS)
    settle(chain, django_capture_on_commit_callbacks)
    assert sorted(Notification.objects.values_list("event", flat=True)) == [
        Event.CHAIN_FAILED,
        Event.CHAIN_RECOVERED,
    ]


def test_a_failed_run_whose_reasons_are_still_coming_is_waited_for(
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscribe(channel())
    chain = f.chain("acme/app")
    f.run(chain, "api", status=Status.FAILED)  # sent, failed, no failed_jobs yet
    Chain.objects.filter(pk=chain.pk).update(status=Status.FAILED, finished_at=timezone.now())

    wait, sent = settle(chain, django_capture_on_commit_callbacks)
    assert wait and not sent and not Notification.objects.exists()

    with override_settings(BATON_NOTIFY_REASON_WAIT=0):  # they never came: send without them
        wait, sent = settle(chain, django_capture_on_commit_callbacks)
    assert wait is None and len(sent) == 1


def test_release_finished_needs_a_matching_target_branch_or_tag(
    django_capture_on_commit_callbacks: Any,
) -> None:
    to = channel()
    subscribe(to, events=[Event.RELEASE_FINISHED], release_refs="main release/*")
    release = ended(f.chain("acme/app", target="release/2.0"), Status.SUCCESS)
    feature = ended(f.chain("acme/app", target="develop", on=release.forge), Status.SUCCESS)
    tag = ended(
        f.chain("acme/app", number=None, target="", upstream_ref="refs/tags/v1", on=release.forge),
        Status.SUCCESS,
    )
    Subscription.objects.filter(channel=to).update(release_refs="main release/* v*")
    for chain in (release, feature, tag):
        settle(chain, django_capture_on_commit_callbacks)
    assert sorted(Notification.objects.values_list("chain", flat=True)) == sorted(
        [release.pk, tag.pk]
    )
    assert "finished: success" in Notification.objects.first().body  # type: ignore[union-attr]


def test_manual_and_refused_runs_are_told_while_the_chain_runs(
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscribe(channel(), events=[Event.RUN_MANUAL, Event.RUN_REFUSED])
    chain = f.chain("acme/app")
    f.run(chain, "deploy", status=Status.MANUAL)
    f.run(
        chain,
        "prod",
        status=Status.FAILED,
        dispatch=Run.Dispatch.IDLE,
        remote_id="",
        error="no grant gives alice trigger on acme/prod",
    )
    settle(chain, django_capture_on_commit_callbacks)
    rows = {n.event: n for n in Notification.objects.all()}
    assert set(rows) == {Event.RUN_MANUAL, Event.RUN_REFUSED}
    assert "1 run waiting:" in rows[Event.RUN_MANUAL].body
    assert "- prod (acme/prod): no grant gives alice trigger" in rows[Event.RUN_REFUSED].body


def test_subscriptions_cover_a_teams_projects_and_only_their_forge(
    django_capture_on_commit_callbacks: Any,
) -> None:
    team = Team.objects.create(name="release")
    gitlab, github = f.forge(), f.forge("github", slug="gh")
    Grant.objects.create(team=team, projects="acme/app", actions=["view"], forge=gitlab)
    to = channel()
    Subscription.objects.create(channel=to, team=team, events=[])
    mine = ended(f.chain("acme/app", on=gitlab))
    theirs = ended(f.chain("acme/app", on=github))
    elsewhere = ended(f.chain("acme/lib", on=gitlab))
    for chain in (mine, theirs, elsewhere):
        settle(chain, django_capture_on_commit_callbacks)
    assert list(Notification.objects.values_list("chain", flat=True)) == [mine.pk]


def test_baton_yml_names_channels_events_and_branches(
    django_capture_on_commit_callbacks: Any,
) -> None:
    chat, mail = channel(), channel("ops-mail", enabled=False)
    on_main = ended(f.chain("acme/app", target="main"))
    on_dev = ended(f.chain("acme/app", target="dev", on=on_main.forge))
    entries = [
        {"channel": chat.name, "events": ["chain_failed"], "branches": ["main"]},
        {"channel": mail.name, "events": []},  # disabled: never told
        {"channel": "nobody-made-this", "events": []},
    ]
    for chain in (on_main, on_dev):
        ChainNotify.objects.create(chain=chain, entries=entries)
        settle(chain, django_capture_on_commit_callbacks)
    assert list(Notification.objects.values_list("chain", "channel")) == [(on_main.pk, chat.pk)]


def test_a_private_downstream_is_not_named(django_capture_on_commit_callbacks: Any) -> None:
    subscribe(channel())
    chain = f.chain("acme/app")
    secret = failed_run(chain, "secret", project="hidden/thing")
    type(secret.repository).objects.filter(pk=secret.repository.pk).update(visibility="private")
    type(chain.repository).objects.filter(pk=chain.repository.pk).update(visibility="public")
    ended(chain)
    settle(chain, django_capture_on_commit_callbacks)
    body = Notification.objects.get().body
    assert "hidden/thing" not in body and "secret" not in body
    assert "a private project" in body
