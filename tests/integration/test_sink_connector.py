"""The Debezium JDBC sink, on the real worker: envelopes on `orders` become rows in orders_db.orders."""
import time
import uuid

import pytest
import sqlalchemy as sa
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

import connect.register
from tests.integration.conftest import wait_for_row

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
def new_order_id(orders_db):
    """Factory of unique order ids; their rows leave the shared table after the test."""
    made = []

    def make() -> str:
        made.append(f"sink-test-{uuid.uuid4()}")
        return made[-1]

    yield make
    with orders_db.begin() as conn:
        for order_id in made:
            try:
                conn.execute(sa.text("DELETE FROM orders WHERE order_id = :id"), {"id": order_id})
            except sa.exc.ProgrammingError:  # no orders table: nothing reached it
                return


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


def assert_running(name: str) -> None:
    status = connect.register.connector_status(name)
    assert status["connector"]["state"] == "RUNNING", status
    assert status["tasks"] and all(t["state"] == "RUNNING" for t in status["tasks"]), status


def test_course_envelope_becomes_a_row(sink_connector, producer, orders_db, new_order_id):
    order_id = new_order_id()
    envelope = course_envelope(order_id)
    producer.send("orders", envelope, key=order_id)

    row = wait_for_row(orders_db, "SELECT * FROM orders WHERE order_id = :id", {"id": order_id})
    assert {k: row[k] for k in envelope["payload"]} == envelope["payload"]


def test_wrong_schema_type_goes_to_dead_letter_topic_and_sink_keeps_running(
        sink_connector, producer, orders_db, kafka_bootstrap, new_order_id):
    bad_id = new_order_id()
    producer.send("orders", course_envelope(bad_id, order_id_type="String"), key=bad_id)

    dead = find_in_topic(kafka_bootstrap, "orders-sink-dlq", bad_id)
    assert dead is not None, "the bad record did not reach orders-sink-dlq"
    headers = {k: (v or b"").decode() for k, v in dead.headers()}
    assert headers["__connect.errors.exception.class.name"] == \
        "org.apache.kafka.connect.errors.DataException"
    assert "Unknown schema type: String" in headers["__connect.errors.exception.message"]
    assert headers["__connect.errors.topic"] == "orders"
    assert_running(sink_connector)

    good_id = new_order_id()
    producer.send("orders", course_envelope(good_id), key=good_id)
    wait_for_row(orders_db, "SELECT order_id FROM orders WHERE order_id = :id", {"id": good_id})
    assert_running(sink_connector)
    with orders_db.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM orders WHERE order_id = :id"),
                            {"id": bad_id}).scalar() == 0


def test_course_envelope_still_lands_once_created_at_column_exists(
        temp_connector, producer, orders_db, new_order_id):
    """Real order events add an optional Timestamp `created_at`; course envelopes lack it."""
    sink = temp_connector()
    table, topic = sink["collection.name.format"], sink["topics"]

    first = new_order_id()
    event = course_envelope(first)
    event["schema"]["fields"].append({"field": "created_at", "type": "int64", "optional": True,
                                      "name": "org.apache.kafka.connect.data.Timestamp",
                                      "version": 1})
    event["payload"]["created_at"] = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    producer.send(topic, event, key=first)
    row = wait_for_row(orders_db, f"SELECT * FROM `{table}` WHERE order_id = :id", {"id": first})
    assert row["created_at"] is not None

    second = new_order_id()
    producer.send(topic, course_envelope(second), key=second)
    row = wait_for_row(orders_db, f"SELECT * FROM `{table}` WHERE order_id = :id", {"id": second})
    assert row["created_at"] is None
    assert row["total_price"] == 750
