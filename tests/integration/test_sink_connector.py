"""The Debezium JDBC sink, on the real worker: envelopes on `orders` become rows in orders_db.orders."""
import time
import uuid

import pytest
import sqlalchemy as sa
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

import connect.register
from tests.support.waiting import wait_for_row

FIELDS = [("order_id", "string"), ("user_id", "string"), ("product_id", "string"),
          ("qty", "int32"), ("unit_price", "int32"), ("total_price", "int32")]


def course_envelope(order_id: str, order_id_type: str = "string") -> dict:
    """The envelope from the course: a struct named `orders` with its payload."""
    types = dict(FIELDS, order_id=order_id_type)
    return {
        "schema": {"type": "struct", "name": "orders", "optional": False,
                   "fields": [{"field": name, "type": types[name], "optional": False}
                              for name, _ in FIELDS]},
        "payload": {"order_id": order_id, "user_id": "user-42", "product_id": "CATALOG-001",
                    "qty": 3, "unit_price": 250, "total_price": 750},
    }


@pytest.fixture
def sink(temp_connector):
    """A private copy of the orders sink whose table the sink creates itself (course envelopes
    lack created_at, which the real orders table requires); removed after the test."""
    return temp_connector()


def new_order_id() -> str:
    return f"sink-test-{uuid.uuid4()}"


def find_in_topic(bootstrap: str, topic: str, key: str, timeout: float = 60):
    """The first message with this key in the topic, read from the start of every partition."""
    # assign() rather than subscribe(): no consumer group is left behind on the broker.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(1)
            if msg is not None and not msg.error() and msg.key() == key.encode():
                return msg
        return None
    finally:
        consumer.close()


def assert_running(settings, name: str) -> None:
    status = connect.register.connector_status(settings.connect_url, name)
    assert status["connector"]["state"] == "RUNNING", status
    assert status["tasks"] and all(t["state"] == "RUNNING" for t in status["tasks"]), status


def test_course_envelope_becomes_a_row(sink, producer, orders_db):
    order_id = new_order_id()
    envelope = course_envelope(order_id)
    producer.send(sink["topics"], envelope, key=order_id)

    row = wait_for_row(orders_db, f"SELECT * FROM `{sink['collection.name.format']}` WHERE order_id = :id",
                       {"id": order_id})
    assert {k: row[k] for k in envelope["payload"]} == envelope["payload"]


def test_wrong_schema_type_goes_to_dead_letter_topic_and_sink_keeps_running(
        stack, sink, producer, orders_db, kafka_bootstrap):
    topic, table = sink["topics"], sink["collection.name.format"]
    bad_id = new_order_id()
    producer.send(topic, course_envelope(bad_id, order_id_type="String"), key=bad_id)

    dead = find_in_topic(kafka_bootstrap, sink["errors.deadletterqueue.topic.name"], bad_id)
    assert dead is not None, "the bad record did not reach the sink's dead-letter topic"
    headers = {k: (v or b"").decode() for k, v in dead.headers()}
    assert headers["__connect.errors.exception.class.name"] == \
        "org.apache.kafka.connect.errors.DataException"
    assert "Unknown schema type: String" in headers["__connect.errors.exception.message"]
    assert headers["__connect.errors.topic"] == topic
    assert_running(stack, sink["name"])

    good_id = new_order_id()
    producer.send(topic, course_envelope(good_id), key=good_id)
    wait_for_row(orders_db, f"SELECT order_id FROM `{table}` WHERE order_id = :id", {"id": good_id})
    assert_running(stack, sink["name"])
    with orders_db.connect() as conn:
        assert conn.execute(sa.text(f"SELECT COUNT(*) FROM `{table}` WHERE order_id = :id"),
                            {"id": bad_id}).scalar() == 0


def with_created_at(envelope: dict, millis: int) -> dict:
    envelope["schema"]["fields"].append({"field": "created_at", "type": "int64", "optional": True,
                                         "name": "org.apache.kafka.connect.data.Timestamp",
                                         "version": 1})
    envelope["payload"]["created_at"] = millis
    return envelope


def test_course_envelope_still_lands_once_created_at_column_exists(sink, producer, orders_db):
    """Real order events add an optional Timestamp `created_at`; course envelopes lack it."""
    table, topic = sink["collection.name.format"], sink["topics"]
    first = new_order_id()
    producer.send(topic, with_created_at(course_envelope(first), 1_767_225_600_000), key=first)
    row = wait_for_row(orders_db, f"SELECT * FROM `{table}` WHERE order_id = :id", {"id": first})
    assert row["created_at"] is not None

    second = new_order_id()
    producer.send(topic, course_envelope(second), key=second)
    row = wait_for_row(orders_db, f"SELECT * FROM `{table}` WHERE order_id = :id", {"id": second})
    assert row["created_at"] is None
    assert row["total_price"] == 750


def test_new_field_adds_a_column_and_keeps_the_old_rows(sink, producer, orders_db):
    """Schema evolution on a table that already has rows: ALTER TABLE ADD COLUMN, old rows intact."""
    table, topic = sink["collection.name.format"], sink["topics"]
    old_ids = [new_order_id() for _ in range(3)]
    for order_id in old_ids:
        producer.send(topic, course_envelope(order_id), key=order_id)
    for order_id in old_ids:
        wait_for_row(orders_db, f"SELECT * FROM `{table}` WHERE order_id = :id", {"id": order_id})
    with orders_db.connect() as conn:
        before = {r.order_id: dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM `{table}`"))}
    assert "created_at" not in next(iter(before.values()))

    new_id = new_order_id()
    producer.send(topic, with_created_at(course_envelope(new_id), 1_767_225_600_000), key=new_id)
    row = wait_for_row(orders_db, f"SELECT * FROM `{table}` WHERE order_id = :id", {"id": new_id})
    assert row["created_at"] is not None
    with orders_db.connect() as conn:
        after = {r.order_id: dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM `{table}`"))}
    for order_id, old in before.items():
        assert {**old, "created_at": None} == after[order_id]
