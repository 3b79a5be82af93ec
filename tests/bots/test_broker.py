"""The Redis broker's transport (config/broker.py) keeps one Redis client per channel for its
commands, and messages still go where kombu's own transport puts them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from kombu import Connection, Queue

from config.broker import Transport


def test_a_channel_publishes_with_one_client_and_messages_arrive(services: None) -> None:
    queue = Queue("baton-test-broker", routing_key="baton-test-broker")
    with Connection(settings.CELERY_BROKER_URL, transport=Transport) as connection:
        channel: Any = connection.default_channel  # the transport's own Channel
        assert isinstance(connection.transport, Transport)
        producer = connection.Producer(channel)
        clients = set()
        for number in range(3):
            producer.publish({"n": number}, routing_key=queue.name, declare=[queue])
            with channel.conn_or_acquire() as client:
                clients.add(id(client))
        assert len(clients) == 1  # built once, not once per message
        with channel.conn_or_acquire("given") as client:
            assert client == "given"  # a caller's own client is used as it is
        got = [getattr(queue(channel).get(no_ack=True), "payload", None) for _ in range(3)]
        assert got == [{"n": 0}, {"n": 1}, {"n": 2}]
        queue(channel).delete()


def test_celery_uses_it_for_a_redis_broker(services: None) -> None:
    from config.celery import app

    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
