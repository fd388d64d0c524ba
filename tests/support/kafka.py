"""Kafka as the tests use it on a real broker: an acknowledged producer, a whole topic read, a
consumer group's lag."""

import json
import time

import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka import Producer as KafkaProducer

from bus.lag import group_offsets
from bus.topic_reader import NoSuchTopic, read_range
from tests.support.waiting import wait_until


def kafka_config(bootstrap: str | dict) -> dict:
    """A client configuration: a bootstrap address of a plaintext stack, or a whole configuration
    (Settings.kafka_client(): a secured cluster's, with credentials) as it is."""
    return dict(bootstrap) if isinstance(bootstrap, dict) else {"bootstrap.servers": bootstrap}


def produce_once(config: dict, topic: str, value: bytes | None = b"{}", key: bytes = b"intruder") -> KafkaError | None:
    """Produce one record as the client of `config` and wait for its outcome: the error (say,
    TOPIC_AUTHORIZATION_FAILED), or None when it was written. For refusals: nothing is retried."""
    outcome = []
    producer = KafkaProducer({**config, "message.timeout.ms": 8000, "log_level": 0})
    producer.produce(topic, value=value, key=key, on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(15)
    return outcome[0] if outcome else KafkaError(KafkaError._MSG_TIMED_OUT)


class Producer:
    """One confluent-kafka producer; send() blocks until the record is acknowledged. `bootstrap`:
    an address, or a client configuration (kafka_config)."""

    def __init__(self, bootstrap: str | dict):
        self._producer = KafkaProducer({**kafka_config(bootstrap), "acks": "all", "linger.ms": 0,
                                        "message.max.bytes": 4_000_000})

    def send(self, topic: str, value, key: str | None = None, timeout: float = 15, headers=None):
        """Produce value (a dict is sent as JSON; headers: (name, bytes) pairs) and return the
        delivered message."""
        if isinstance(value, dict):
            value = json.dumps(value)
        outcome = {}

        def on_delivery(err, msg):
            outcome["err"], outcome["msg"] = err, msg

        self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
        self._producer.flush(timeout)
        if "msg" not in outcome:
            pytest.fail(f"record to {topic} not delivered within {timeout}s")
        if outcome["err"] is not None:
            pytest.fail(f"record to {topic} failed: {outcome['err']}")
        return outcome["msg"]

    def close(self):
        self._producer.flush(10)


def read_topic(bootstrap: str | dict, topic: str, count: int | None = None, timeout: float = 30) -> list:
    """Every message of a topic, from the start of each partition to its end (bus.topic_reader);
    `bootstrap`: an address, or a client configuration (kafka_config).

    With `count`, waits (up to `timeout`) until the topic holds that many, then reads once more a
    second later (more is a bug the caller should see); without, a missing topic is empty."""
    client = kafka_config(bootstrap)

    def read() -> list:
        try:
            return list(read_range(client, topic, timeout=timeout))
        except NoSuchTopic:
            return []
    if count is None:
        return read()
    wait_until(lambda: len(read()) >= count, timeout=timeout, interval=0.5, what=f"{count} messages in {topic}")
    time.sleep(1)
    return read()


def consumer_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of topic that group has not committed yet, summed over partitions."""
    # Reading committed offsets does not join the group (no subscribe()).
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = group_offsets(probe, topic, timeout=10) or {}  # no topic yet: nothing to consume
        return sum(end - position for position, end in offsets.values())
    finally:
        probe.close()
