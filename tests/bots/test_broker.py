"""The Redis broker's transport (config/broker.py) keeps one Redis client per channel for its
commands, and messages still go where kombu's own transport puts them."""

from __future__ import annotations

import base64
import json
from typing import Any

from django.conf import settings
from kombu import Connection, Queue, pools

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


def test_intake_declares_a_queue_once_per_connection_and_every_message_arrives(
    services: None,
) -> None:
    """RabbitMQ drops a message for a queue nobody declared: the webhook view's first publish on
    a connection declares the queue, the later ones skip kombu's copies of it
    (bots/webhooks.py ``_enqueue``)."""
    from unittest import mock

    from bots import kicks, webhooks
    from config.celery import app

    queue = app.amqp.queues[kicks.queue_for("gitlab", "Merge Request Hook")]
    celery: Any = app
    pools.reset()  # fresh connections (kombu keeps one pool per broker URL for the process)
    celery._pool = None  # nothing declared on them yet
    _drop(app, queue.name)
    declared: list[str] = []
    real_declare = Queue.declare

    def counting(self: Queue, *args: Any, **kwargs: Any) -> Any:
        declared.append(self.name)
        return real_declare(self, *args, **kwargs)

    try:
        with mock.patch.object(Queue, "declare", counting):
            for delivery_id in (101, 102, 103):
                webhooks._enqueue(delivery_id, "gitlab", "Merge Request Hook")
        assert declared == [queue.name]
        with app.connection_for_write() as connection:
            channel: Any = connection.default_channel
            messages = [json.loads(m) for m in channel.client.lrange(queue.name, 0, -1)]
        sent = [json.loads(base64.b64decode(m["body"]))[0] for m in messages]  # the arguments
        assert sorted(sent) == [[101], [102], [103]]
    finally:
        _drop(app, queue.name)
        pools.reset()
        celery._pool = None


def _drop(app: Any, name: str) -> None:
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        channel.client.delete(name)
