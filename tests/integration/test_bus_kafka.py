"""bus.producer and bus.consumer against the real broker; the JDBC sink on our envelopes.

Assertions inside a handler would be swallowed by the consumer (retried or
dead-lettered): handlers record problems in a list that the test asserts, and
an exception raised in a consumer thread is raised again in the test.
"""

import collections
import os
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType
from google.protobuf.timestamp_pb2 import Timestamp

from bus import dead_letters
from bus.consumer import EventConsumer
from bus.envelope import encode
from bus.failures import PermanentError
from bus.producer import EventProducer
from ordersync.order.v1 import order_event_pb2
from ordersync.testing.v1 import all_types_pb2
from tests.support.kafka import consumer_lag, read_topic
from tests.support.waiting import wait_for_row, wait_until


@pytest.fixture
def new_topic(kafka_bootstrap):
    """Factory: new_topic(partitions=3, config=None, name=None) creates a topic; the topics,
    dead-letter topics and groups a test names in `made` are deleted afterwards."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    made = {"topics": [], "groups": []}

    def make(partitions=3, config=None, name=None):
        topic = name or f"test-bus-{uuid.uuid4().hex[:10]}"
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                      config=config or {})])[topic].result(30)
        made["topics"].append(topic)
        return topic

    make.made = made
    yield make
    for group in made["groups"]:
        try:
            admin.delete_consumer_groups([group])[group].result(timeout=30)
        except Exception:  # the group may still be settling after close(); harmless
            pass
    for future in admin.delete_topics(made["topics"], operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception:  # a DLQ never written was never created
            pass


@pytest.fixture
def fresh_topic(new_topic):
    """A new 3-partition topic and the list of what to delete with it."""
    return new_topic(), new_topic.made


def group_for(made, topic, run):
    """A new consumer group on `topic`; it and its dead-letter topic are cleaned up."""
    group = f"test-bus-{run}"
    made["groups"].append(group)
    made["topics"].append(f"{topic}.{group}.dlq")
    return group, f"{topic}.{group}.dlq"


def topic_exists(bootstrap, topic):
    # Listing all topics: asking for one by name could auto-create it.
    return topic in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics


def committed(bootstrap, group, topic, partition=0):
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "enable.auto.commit": False})
    try:
        return probe.committed([TopicPartition(topic, partition)], timeout=10)[0].offset
    finally:
        probe.close()


def order(i, run):
    return order_event_pb2.OrderPlaced(
        order_id=f"{run}-{i:03d}", user_id="user-1", product_id="CATALOG-001", qty=1 + i % 3,
        unit_price=100, total_price=(1 + i % 3) * 100,
        created_at=Timestamp(seconds=1_700_000_000 + i))


class Running:
    """consumer.run(stop) in a thread; stop() ends it, closes the consumer and raises again
    whatever the thread raised."""

    def __init__(self, consumer, stop=None):
        self.consumer = consumer
        self.stop_event = stop or threading.Event()
        self.raised = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.consumer.run(self.stop_event, poll_timeout=0.2)
        except BaseException as e:
            self.raised.append(e)

    def wait_stopped(self, timeout=90):
        """Wait for a stop set by the handler."""
        self.thread.join(timeout)
        return self.stop()

    def stop(self):
        self.stop_event.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the consumer did not stop"
        self.consumer.close()
        if self.raised:
            raise self.raised[0]


def run_until_caught_up(consumer, bootstrap, group, topic, timeout=90):
    """Run the consumer until its group has committed every message of `topic`."""
    running = Running(consumer)
    try:
        wait_until(lambda: consumer_lag(bootstrap, group, topic) == 0 or running.raised,
                   timeout=timeout, what=f"group {group} to commit all of {topic}")
    finally:
        running.stop()


def test_dead_letter_restart_and_no_message_skipped(kafka_bootstrap, fresh_topic):
    topic, made = fresh_topic
    run = uuid.uuid4().hex[:8]
    msgs = [order(i, run) for i in range(40)]
    with EventProducer(topic, "order_id", client={"bootstrap.servers": kafka_bootstrap}) as producer:
        results = producer.publish_many(msgs[:-1])
        assert len(results) == 39 and len(set(results)) == 39
        partition, offset = producer.publish(msgs[-1])
        assert 0 <= partition < 3 and offset >= 0
    # A record that is no envelope at all, in the middle of the stream.
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    raw.produce(topic, key=b"garbage", value=b'{"not": "an envelope"}')
    assert raw.flush(10) == 0

    poison = f"{run}-007"
    group, dlq = group_for(made, topic, run)
    handled, calls, problems = [], [], []
    stop = threading.Event()

    def handler(msg, meta):
        calls.append(msg.order_id)
        if meta.key != msg.order_id or meta.topic != topic:
            problems.append(f"meta {meta} does not fit {msg.order_id}")
        if msg.order_id == poison:
            raise PermanentError(f"cannot handle {msg.order_id}")
        handled.append(msg.order_id)
        if len(handled) == 15:
            stop.set()

    # First consumer: stops (cleanly) after 15 handled events.
    Running(EventConsumer(topic, order_event_pb2.OrderPlaced, group, handler,
                          client={"bootstrap.servers": kafka_bootstrap}), stop).wait_stopped()
    assert len(handled) == 15

    # Restarted in the same group: carries on from the committed offsets, until every record
    # is dealt with. (Stopping at the 39th handled event instead left the dead letters after
    # it in their partition unread: that was the flake.)
    run_until_caught_up(EventConsumer(topic, order_event_pb2.OrderPlaced, group, handler,
                                      client={"bootstrap.servers": kafka_bootstrap}), kafka_bootstrap, group, topic)

    assert problems == []
    expected = {m.order_id for m in msgs} - {poison}
    assert set(handled) == expected
    # Offsets are committed after every event and the stop was clean: nothing twice.
    assert len(handled) == len(expected)
    assert calls.count(poison) == 1  # permanent: dead-lettered at once

    dead = read_topic(kafka_bootstrap, dlq, 2)
    assert sorted(m.key() for m in dead) == sorted([b"garbage", poison.encode()])
    for m in dead:
        headers = {k: v.decode() for k, v in m.headers()}
        assert headers[dead_letters.H_ORIGIN_TOPIC] == topic
        assert int(headers[dead_letters.H_ORIGIN_PARTITION]) in range(3)
        assert int(headers[dead_letters.H_ORIGIN_OFFSET]) >= 0
        assert headers[dead_letters.H_ATTEMPTS] == "1"
        if m.key() == b"garbage":
            assert m.value() == b'{"not": "an envelope"}'
            assert headers[dead_letters.H_ERROR_CLASS] == "EnvelopeError"
        else:
            assert m.value() == encode(msgs[7])  # kept as it was
            assert headers[dead_letters.H_ERROR_CLASS] == "PermanentError"
            assert headers[dead_letters.H_ERROR_MESSAGE] == f"cannot handle {poison}"


def test_an_outage_longer_than_max_poll_interval_heals_with_every_message_once(
        kafka_bootstrap, fresh_topic):
    topic, made = fresh_topic
    run = uuid.uuid4().hex[:8]
    msgs = [order(i, run) for i in range(30)]
    with EventProducer(topic, "order_id", client={"bootstrap.servers": kafka_bootstrap}) as producer:
        producer.publish_many(msgs)
    group, dlq = group_for(made, topic, run)
    outage = threading.Event()
    outage.set()
    effects = collections.Counter()
    health = []

    def handler(msg, meta):
        if outage.is_set():
            raise ConnectionError("catalog database down")
        effects[msg.order_id] += 1

    max_poll_ms = 6000  # the broker's smallest session timeout; the outage lasts longer
    consumer = EventConsumer(
        topic, order_event_pb2.OrderPlaced, group, handler, client={"bootstrap.servers": kafka_bootstrap},
        retry_backoff=0.1, max_backoff=2.0,
        on_health=lambda serving, reason: health.append((serving, reason)),
        extra_config={"max.poll.interval.ms": max_poll_ms, "session.timeout.ms": max_poll_ms,
                      "heartbeat.interval.ms": 1000})
    running = Running(consumer)
    try:
        wait_until(lambda: health, timeout=60, what="the consumer to report it is stuck")
        time.sleep(3 * max_poll_ms / 1000)
        assert [serving for serving, _ in health] == [False], \
            f"the consumer lost its partitions while stuck: {health}"
        assert effects == {}
        outage.clear()
        wait_until(lambda: consumer_lag(kafka_bootstrap, group, topic) == 0 or running.raised,
                   timeout=90, what="the consumer to catch up after the outage")
    finally:
        running.stop()
    assert effects == {m.order_id: 1 for m in msgs}  # none lost, none twice
    assert [serving for serving, _ in health] == [False, True]
    assert "catalog database down" in health[0][1] and "recovered" in health[1][1]
    assert not topic_exists(kafka_bootstrap, dlq)  # a transient failure is never dead-lettered


# Records no producer of ours would write; each must reach the dead-letter topic.
POISON = {
    b"random": os.urandom(300),
    b"not-json": b"{this is not json",
    b"deep": b"[" * 100_000,
    b"huge": b"\xff" * 1_048_576,  # over the dead-letter topic's 1 MB limit
    b"tombstone": None,
    b"schema-null": b'{"schema": null, "payload": {"order_id": "x"}}',
}


def test_poison_records_are_dead_lettered_and_the_consumer_keeps_going(kafka_bootstrap,
                                                                       new_topic):
    topic = new_topic(config={"max.message.bytes": str(3 * 1024 * 1024)})  # room for "huge"
    run = uuid.uuid4().hex[:8]
    group, dlq = group_for(new_topic.made, topic, run)
    msgs = [order(i, run) for i in range(12)]
    raw = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 3 * 1024 * 1024})
    failed = []
    for i, msg in enumerate(msgs):  # poison between good events
        raw.produce(topic, key=msg.order_id.encode(), value=encode(msg))
        if i < len(POISON):
            key = list(POISON)[i]
            raw.produce(topic, key=key, value=POISON[key],
                        on_delivery=lambda e, m: e and failed.append(e))
    assert raw.flush(30) == 0 and failed == []

    effects, health = collections.Counter(), []
    consumer = EventConsumer(topic, order_event_pb2.OrderPlaced, group,
                             lambda msg, meta: effects.update([msg.order_id]),
                             client={"bootstrap.servers": kafka_bootstrap},
                             on_health=lambda serving, reason: health.append((serving, reason)))
    run_until_caught_up(consumer, kafka_bootstrap, group, topic)

    assert effects == {m.order_id: 1 for m in msgs}
    assert health == []  # dead-lettering is not being stuck
    dead = {m.key(): m for m in read_topic(kafka_bootstrap, dlq, len(POISON))}
    assert sorted(dead) == sorted(POISON)
    reasons = {key: {k: v.decode() for k, v in m.headers()} for key, m in dead.items()}
    for key, headers in reasons.items():
        assert headers[dead_letters.H_ERROR_CLASS] == "EnvelopeError", key
        assert headers[dead_letters.H_ORIGIN_TOPIC] == topic
    assert "not UTF-8" in reasons[b"random"][dead_letters.H_ERROR_MESSAGE] or \
        "not JSON" in reasons[b"random"][dead_letters.H_ERROR_MESSAGE]
    assert "not JSON" in reasons[b"not-json"][dead_letters.H_ERROR_MESSAGE]
    assert "nested too deeply" in reasons[b"deep"][dead_letters.H_ERROR_MESSAGE]
    assert "tombstone" in reasons[b"tombstone"][dead_letters.H_ERROR_MESSAGE]
    assert "schema must be an object" in reasons[b"schema-null"][dead_letters.H_ERROR_MESSAGE]
    for key in POISON:
        if key != b"huge":
            assert dead[key].value() == POISON[key]
            assert dead_letters.H_TRUNCATED not in reasons[key]
    huge = reasons[b"huge"]
    assert dead[b"huge"].value() == POISON[b"huge"][:64 * 1024]
    assert huge[dead_letters.H_TRUNCATED] == "true"
    assert huge[dead_letters.H_ORIGINAL_SIZE] == str(1_048_576)
    assert "MSG_SIZE_TOO_LARGE" in huge[dead_letters.H_TRUNCATED_REASON]
    assert "not UTF-8" in huge[dead_letters.H_ERROR_MESSAGE]


def test_an_unwritable_dead_letter_topic_stalls_the_consumer_until_it_heals(kafka_bootstrap,
                                                                            new_topic):
    topic = new_topic(partitions=1)
    run = uuid.uuid4().hex[:8]
    group, dlq = group_for(new_topic.made, topic, run)
    # Every record is too large for it, even the truncated copy.
    new_topic(partitions=1, config={"max.message.bytes": "100"}, name=dlq)
    msgs = [order(i, run) for i in range(4)]
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    raw.produce(topic, key=msgs[0].order_id.encode(), value=encode(msgs[0]))
    raw.produce(topic, key=b"garbage", value=b"garbage")  # offset 1
    for msg in msgs[1:]:
        raw.produce(topic, key=msg.order_id.encode(), value=encode(msg))
    assert raw.flush(30) == 0

    handled, health = [], []
    consumer = EventConsumer(topic, order_event_pb2.OrderPlaced, group,
                             lambda msg, meta: handled.append(msg.order_id),
                             client={"bootstrap.servers": kafka_bootstrap}, retry_backoff=0.1, max_backoff=1.0,
                             on_health=lambda serving, reason: health.append((serving, reason)))
    running = Running(consumer)
    try:
        wait_until(lambda: health, timeout=60, what="the consumer to report it is stuck")
        assert health[0][0] is False and f"to {dlq}" in health[0][1]
        wait_until(lambda: committed(kafka_bootstrap, group, topic) == 1, timeout=30,
                   what="the event before the garbage to be committed")
        time.sleep(5)  # retrying meanwhile: nothing may move past the garbage
        assert committed(kafka_bootstrap, group, topic) == 1
        assert handled == [msgs[0].order_id] and running.thread.is_alive()

        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for future in admin.incremental_alter_configs([ConfigResource(
                ResourceType.TOPIC, dlq, incremental_configs=[ConfigEntry(
                    "max.message.bytes", None,
                    incremental_operation=AlterConfigOpType.DELETE)])]).values():
            future.result(30)
        wait_until(lambda: consumer_lag(kafka_bootstrap, group, topic) == 0 or running.raised,
                   timeout=60, what="the consumer to catch up once the DLQ takes the garbage")
    finally:
        running.stop()
    assert handled == [m.order_id for m in msgs]
    assert [serving for serving, _ in health] == [False, True]
    (dead,) = read_topic(kafka_bootstrap, dlq, 1)
    assert dead.value() == b"garbage"
    assert {k: v.decode() for k, v in dead.headers()}[dead_letters.H_ORIGIN_OFFSET] == "1"


def flat(run, **kwargs):
    return all_types_pb2.Flat(
        id=f"{run}-{kwargs.pop('n', 0)}", f_string="héllo", f_bool=True, f_int32=-2**31,
        f_int64=2**63 - 1, f_uint32=2**32 - 1, f_uint64=2**64 - 1, f_float=1.5, f_double=0.1,
        f_bytes=b"\x00\xffbin", f_enum=all_types_pb2.COLOR_GREEN,
        f_timestamp=Timestamp(seconds=1_700_000_000, nanos=123_000_000), **kwargs)


def test_jdbc_sink_writes_flat_message_columns(temp_connector, orders_db, kafka_bootstrap):
    config = temp_connector({"primary.key.fields": "id"})
    table = config["collection.name.format"]
    run = uuid.uuid4().hex[:8]
    full = flat(run, n=1, o_string="set", w_int32={"value": 7})
    empty = all_types_pb2.Flat(id=f"{run}-2")  # defaults, and nulls for optional fields
    with EventProducer(config["topics"], "id", client={"bootstrap.servers": kafka_bootstrap}) as producer:
        producer.publish_many([full, empty])

    row = wait_for_row(orders_db, f"SELECT * FROM `{table}` WHERE id = :id", {"id": full.id})
    assert row["f_string"] == "héllo"
    assert row["f_bool"] in (True, 1)
    assert row["f_int32"] == -2**31
    assert row["f_int64"] == 2**63 - 1
    assert row["f_uint32"] == 2**32 - 1
    assert row["f_uint64"] == 2**64 - 1  # Decimal: beyond int64, lossless
    assert row["f_float"] == pytest.approx(1.5)
    assert row["f_double"] == 0.1
    assert bytes(row["f_bytes"]) == b"\x00\xffbin"
    assert row["f_enum"] == "COLOR_GREEN"
    ts = row["f_timestamp"]
    assert ts.replace(tzinfo=timezone.utc) == datetime(2023, 11, 14, 22, 13, 20, 123000,
                                                       tzinfo=timezone.utc)
    assert row["o_string"] == "set"
    assert row["w_int32"] == 7

    with orders_db.connect() as conn:
        column_type = conn.execute(sa.text(
            "SELECT column_type FROM information_schema.columns WHERE table_schema = DATABASE()"
            " AND table_name = :t AND column_name = 'f_uint64'"), {"t": table}).scalar()
    assert column_type == "decimal(20,0)"

    row = wait_for_row(orders_db, f"SELECT * FROM `{table}` WHERE id = :id", {"id": empty.id})
    assert (row["f_string"], row["f_int64"], row["f_uint64"], row["f_enum"]) == \
        ("", 0, 0, "COLOR_UNSPECIFIED")
    assert row["f_timestamp"] is None and row["o_string"] is None and row["w_int32"] is None


def test_concurrent_publish_from_a_thread_pool(kafka_bootstrap, fresh_topic):
    """Like a gRPC server's pool: every call returns its own acknowledged position."""
    from concurrent.futures import ThreadPoolExecutor

    topic, _ = fresh_topic
    run = uuid.uuid4().hex[:8]
    msgs = [order(i, run) for i in range(80)]
    with EventProducer(topic, "order_id", client={"bootstrap.servers": kafka_bootstrap}) as producer:
        with ThreadPoolExecutor(8) as pool:
            positions = list(pool.map(producer.publish, msgs))
    assert len(set(positions)) == len(msgs)
    stored = read_topic(kafka_bootstrap, topic, len(msgs))
    by_position = {(m.partition(), m.offset()): m for m in stored}
    for msg, position in zip(msgs, positions):
        record = by_position[position]
        assert record.key() == msg.order_id.encode()
        assert record.value() == encode(msg)
