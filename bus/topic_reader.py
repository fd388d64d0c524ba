"""Reading a range of a topic once, as tools do: assign(), no group joined, nothing committed.

The dead-letter tools, the doctor (one record at P:O), the demo and the tests read topics this way,
through read_range; the Catalog's retention of applied_orders asks each partition's first offset
through watermarks(). A consumer that follows a topic is an EventConsumer instead.
"""

import time
from collections.abc import Iterator

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from bus.clients import LIBRDKAFKA, KafkaClients


class NoSuchTopic(Exception):
    """The topic does not exist (yet)."""


class NoSuchPartition(Exception):
    """A partition asked for is not one of the topic's."""


class ReadTimeout(Exception):
    """The range could not be read to its end in time."""


# What a partition's broker answers while its leader is being elected or moves (a topic just
# created, a broker restarted): it passes within seconds, so it is asked again.
_LEADER_MOVING = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                  KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.FENCED_LEADER_EPOCH)


def _metadata(c, topic: str, deadline: float):
    """The topic's metadata (None if the broker knows no such topic), asked again while its
    partitions' leaders are being elected, until `deadline`."""
    while True:
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is None or meta.error.code() not in _LEADER_MOVING \
                or time.monotonic() > deadline:
            return meta
        time.sleep(0.2)


def _watermarks(c, tp: TopicPartition, deadline: float) -> tuple[int, int]:
    """(low, high) of the partition, asked again while its leader moves, until `deadline`."""
    while True:
        try:
            return c.get_watermark_offsets(tp, timeout=10)
        except KafkaException as e:
            error = e.args[0]
            if not (error.retriable() or error.code() in _LEADER_MOVING) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _partition_watermarks(c, topic: str, partitions, deadline: float) -> dict[int, tuple[int, int]]:
    """{partition: (low, high)} of `partitions` of `topic` (None: all of them). Raises NoSuchTopic,
    NoSuchPartition, or KafkaException (a topic it may not describe, a broker that does not answer);
    a leader being elected is waited for until `deadline`."""
    meta = _metadata(c, topic, deadline)
    if meta is None or (meta.error is not None and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        raise NoSuchTopic(f"no topic {topic}")
    if meta.error is not None:
        raise KafkaException(meta.error)
    missing = sorted(set(partitions or ()) - set(meta.partitions))
    if missing:
        raise NoSuchPartition(f"{topic} has no partition {missing[0]} (it has {len(meta.partitions)})")
    return {p: _watermarks(c, TopicPartition(topic, p), deadline)
            for p in sorted(meta.partitions) if partitions is None or p in partitions}


def watermarks(consumer, topic: str, timeout: float = 30.0) -> dict[int, tuple[int, int]]:
    """{partition: (first offset, end)} of every partition of `topic`, through a consumer the caller
    keeps (never subscribed). Raises NoSuchTopic, or KafkaException; a partition whose leader is
    being elected is asked again within `timeout`."""
    return _partition_watermarks(consumer, topic, None, time.monotonic() + timeout)


def read_range(client: dict, topic: str, starts: dict[int, int] | None = None, ends: dict[int, int] | None = None,
               timeout: float = 60.0, clients: KafkaClients = LIBRDKAFKA) -> Iterator:
    """Yield the records of `topic` from `starts` ({partition: offset}: only those partitions;
    default every partition from its first offset) up to `ends` (default: the end each partition
    had when called), partition by partition in offset order as they come.

    `client`: the librdkafka settings of the process's clients (bootstrap servers, credentials:
    ordersync.config.Settings.kafka_client()). Raises NoSuchTopic, NoSuchPartition, ReadTimeout, or KafkaException
    on a fatal error; a partition whose leader is being elected or moves is asked again (within
    `timeout`). read_committed: a transaction's aborted records and markers are skipped."""
    # log_level 2: librdkafka logs an error when a reader this short-lived is closed while its group
    # coordinator connection is still logging in ("SASL authentication error ... in state DOWN"),
    # which told operators of a failure there was none. What does fail here is raised (no
    # metadata, a fatal error, ReadTimeout), with librdkafka's message.
    c = clients.consumer({**client, "group.id": "ordersync-topic-reader", "enable.auto.commit": False,
                          "isolation.level": "read_committed", "log_level": 2})
    deadline = time.monotonic() + timeout
    try:
        left, assignment = {}, []
        for p, (low, high) in _partition_watermarks(c, topic, starts, deadline).items():
            first = low if starts is None else max(low, starts[p])
            last = high if ends is None or p not in ends else min(high, ends[p])
            if first < last:
                left[p] = last
                assignment.append(TopicPartition(topic, p, first))
        c.assign(assignment)
        while left:
            if time.monotonic() > deadline:
                raise ReadTimeout(f"could not read {topic} to its end within {timeout:.0f}s")
            for m in c.consume(500, 0.5):
                if m.error():
                    if m.error().fatal():
                        raise KafkaException(m.error())
                    continue
                if m.offset() < left.get(m.partition(), -1):
                    yield m
            # A position steps over what is no record (markers), so it tells when a range is done.
            for tp in c.position([TopicPartition(topic, p) for p in left]):
                if tp.offset >= left[tp.partition]:
                    del left[tp.partition]
    finally:
        c.close()
