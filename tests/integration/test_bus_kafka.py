"""bus.producer and bus.consumer against the real broker; the JDBC sink on our envelopes."""

import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from google.protobuf.timestamp_pb2 import Timestamp

from bus import consumer as bus_consumer
from bus.consumer import EventConsumer
from bus.envelope import encode
from bus.producer import EventProducer
from ordersync.order.v1 import order_event_pb2
from ordersync.testing.v1 import all_types_pb2
from tests.helpers import wait_for_row, wait_until


@pytest.fixture
def fresh_topic(kafka_bootstrap):
    """A new 3-partition topic; deleted afterwards with the DLQ topics and groups made on it."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topic = f"test-bus-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)
    made = {"topics": [topic], "groups": []}
    yield topic, made
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


def read_all(bootstrap, topic, count, timeout=30):
    """The first `count` messages of every partition of `topic` (assign(): no group left)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                  "enable.auto.commit": False})
    try:
        partitions = wait_until(lambda: c.list_topics(topic, timeout=5).topics[topic].partitions,
                                timeout=timeout, what=f"topic {topic}")
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out, deadline = [], time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                out.append(m)
        time.sleep(1)  # anything beyond `count` would be a bug: look for it
        while (m := c.poll(0.5)) is not None:
            if not m.error():
                out.append(m)
        return out
    finally:
        c.close()


def order(i, run):
    return order_event_pb2.OrderPlaced(
        order_id=f"{run}-{i:03d}", user_id="user-1", product_id="CATALOG-001", qty=1 + i % 3,
        unit_price=100, total_price=(1 + i % 3) * 100,
        created_at=Timestamp(seconds=1_700_000_000 + i))


def run_consumer(consumer, stop, timeout=60):
    t = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    t.start()
    t.join(timeout)
    stop.set()
    t.join(10)
    assert not t.is_alive()


def test_dead_letter_restart_and_no_message_skipped(kafka_bootstrap, fresh_topic):
    topic, made = fresh_topic
    run = uuid.uuid4().hex[:8]
    msgs = [order(i, run) for i in range(40)]
    with EventProducer(topic, "order_id", bootstrap=kafka_bootstrap) as producer:
        results = producer.publish_many(msgs[:-1])
        assert len(results) == 39 and len(set(results)) == 39
        partition, offset = producer.publish(msgs[-1])
        assert 0 <= partition < 3 and offset >= 0
    # A record that is no envelope at all, in the middle of the stream.
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    raw.produce(topic, key=b"garbage", value=b'{"not": "an envelope"}')
    assert raw.flush(10) == 0

    poison = f"{run}-007"
    group = f"test-bus-{run}"
    made["groups"].append(group)
    dlq = f"{topic}.{group}.dlq"
    made["topics"].append(dlq)
    handled, calls = [], []
    stop = threading.Event()
    stop_after = [15]

    def handler(msg, meta):
        calls.append(msg.order_id)
        assert meta.key == msg.order_id and meta.topic == topic
        if msg.order_id == poison:
            raise RuntimeError(f"cannot handle {msg.order_id}")
        handled.append(msg.order_id)
        if len(handled) >= stop_after[0]:
            stop.set()

    # First consumer: stops (cleanly) after 15 handled events.
    consumer = EventConsumer(topic, order_event_pb2.OrderPlaced, group, handler,
                             bootstrap=kafka_bootstrap, retry_backoff=0.01)
    run_consumer(consumer, stop)
    consumer.close()
    assert len(handled) == 15

    # Restarted in the same group: carries on from the committed offsets.
    stop = threading.Event()
    stop_after[0] = 39
    consumer = EventConsumer(topic, order_event_pb2.OrderPlaced, group, handler,
                             bootstrap=kafka_bootstrap, retry_backoff=0.01)
    run_consumer(consumer, stop)
    consumer.close()

    expected = {m.order_id for m in msgs} - {poison}
    assert set(handled) == expected
    # Offsets are committed after every event and the stop was clean: nothing twice.
    assert len(handled) == len(expected)
    assert calls.count(poison) == 3  # max_attempts

    dead = read_all(kafka_bootstrap, dlq, 2)
    assert sorted(m.key() for m in dead) == sorted([b"garbage", poison.encode()])
    for m in dead:
        headers = {k: v.decode() for k, v in m.headers()}
        assert headers[bus_consumer.H_ORIGIN_TOPIC] == topic
        assert int(headers[bus_consumer.H_ORIGIN_PARTITION]) in range(3)
        assert int(headers[bus_consumer.H_ORIGIN_OFFSET]) >= 0
        if m.key() == b"garbage":
            assert m.value() == b'{"not": "an envelope"}'
            assert headers[bus_consumer.H_ERROR_CLASS] == "EnvelopeError"
            assert headers[bus_consumer.H_ATTEMPTS] == "0"
        else:
            assert m.value() == encode(msgs[7])  # kept as it was
            assert headers[bus_consumer.H_ERROR_CLASS] == "RuntimeError"
            assert headers[bus_consumer.H_ERROR_MESSAGE] == f"cannot handle {poison}"
            assert headers[bus_consumer.H_ATTEMPTS] == "3"


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
    with EventProducer(config["topics"], "id", bootstrap=kafka_bootstrap) as producer:
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
    with EventProducer(topic, "order_id", bootstrap=kafka_bootstrap) as producer:
        with ThreadPoolExecutor(8) as pool:
            positions = list(pool.map(producer.publish, msgs))
    assert len(set(positions)) == len(msgs)
    stored = read_all(kafka_bootstrap, topic, len(msgs))
    by_position = {(m.partition(), m.offset()): m for m in stored}
    for msg, position in zip(msgs, positions):
        record = by_position[position]
        assert record.key() == msg.order_id.encode()
        assert record.value() == encode(msg)
