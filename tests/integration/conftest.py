"""The one fixture module for integration tests: they run against the real local stack.

Fixtures:
    stack           (session) starts or reuses MariaDB, Kafka and Connect; returns connect.settings
    sink_connector  (session) registers connect/orders-sink.json and waits until it RUNS; its name
    orders_db       (session) SQLAlchemy engine on the shared database orders_db
    kafka_bootstrap (session) "host:port" of the broker
    producer        (session) Producer whose send() returns once the broker acknowledged
    temp_connector  (function) factory: a private copy of the sink (own name, topic, table, DLQ),
                    deleted with its table and topics afterwards

Helpers: wait_until(check, ...), wait_for_row(engine, sql, params, ...),
consumer_lag(bootstrap, group, topic).
"""
import json
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

import connect.register
import connect.stack
from connect import settings

ORDERS_SINK_JSON = settings.ROOT / "connect" / "orders-sink.json"


# ---------------------------------------------------------------- helpers

def wait_until(check, timeout: float = 60, interval: float = 0.5, what: str = "the condition"):
    """Call check() until it returns something truthy and return that; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_for_row(engine: sa.Engine, sql: str, params: dict | None = None, timeout: float = 60):
    """Run a SELECT until it returns a row; return that row as a dict."""
    def first_row():
        with engine.connect() as conn:
            try:
                row = conn.execute(sa.text(sql), params or {}).mappings().first()
            except sa.exc.ProgrammingError:  # table not created by the sink yet
                return None
        return dict(row) if row else None
    return wait_until(first_row, timeout=timeout, what=f"a row from {sql!r} {params or ''}")


def consumer_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of topic that group has not committed yet, summed over partitions."""
    from confluent_kafka import Consumer, TopicPartition
    # Reading committed offsets does not join the group (no subscribe()).
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "enable.auto.commit": False})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        committed = probe.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        lag = 0
        for tp in committed:
            low, high = probe.get_watermark_offsets(tp, timeout=10)
            lag += high - (tp.offset if tp.offset >= 0 else low)
        return lag
    finally:
        probe.close()


class Producer:
    """One confluent-kafka producer for the session; send() blocks until the record is acked."""

    def __init__(self, bootstrap: str):
        from confluent_kafka import Producer as KafkaProducer
        self._producer = KafkaProducer({"bootstrap.servers": bootstrap, "acks": "all",
                                        "linger.ms": 0})

    def send(self, topic: str, value, key: str | None = None, timeout: float = 15):
        """Produce value (a dict is sent as JSON) and return the delivered message."""
        if isinstance(value, dict):
            value = json.dumps(value)
        outcome = {}

        def on_delivery(err, msg):
            outcome["err"], outcome["msg"] = err, msg

        self._producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
        self._producer.flush(timeout)
        if "msg" not in outcome:
            pytest.fail(f"record to {topic} not delivered within {timeout}s")
        if outcome["err"] is not None:
            pytest.fail(f"record to {topic} failed: {outcome['err']}")
        return outcome["msg"]

    def close(self):
        self._producer.flush(10)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def stack():
    """The running local stack (started if needed, quick when it is up); connect.settings."""
    try:
        connect.stack.up()
    except connect.stack.StackError as err:
        pytest.fail(f"local stack did not come up: {err}", pytrace=False)
    return settings


@pytest.fixture(scope="session")
def sink_connector(stack) -> str:
    """The shared orders-sink connector, registered (idempotently) and RUNNING; its name."""
    return connect.register.register(ORDERS_SINK_JSON, wait=True, timeout=120)


@pytest.fixture(scope="session")
def orders_db(stack) -> sa.Engine:
    engine = sa.create_engine(settings.sqlalchemy_url("orders_db"), pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def kafka_bootstrap(stack) -> str:
    return settings.KAFKA_BOOTSTRAP


@pytest.fixture(scope="session")
def producer(kafka_bootstrap) -> Producer:
    p = Producer(kafka_bootstrap)
    yield p
    p.close()


@pytest.fixture
def temp_connector(stack, orders_db):
    """Factory: make(overrides=None, base=orders-sink.json) registers a private copy of a sink.

    The copy gets a unique name, topic, table (in orders_db) and dead-letter topic;
    `overrides` (Connect config keys) win over all of these. It returns the config
    that was registered (placeholders not filled), once connector and task RUN.
    On teardown the connector, its table, its topics and its consumer group go away.
    """
    made = []

    def make(overrides: dict | None = None, base: str | Path = ORDERS_SINK_JSON) -> dict:
        suffix = uuid.uuid4().hex[:10]
        config = dict(json.loads(Path(base).read_text())["config"])
        config.update({
            "name": f"test-sink-{suffix}",
            "topics": f"test-orders-{suffix}",
            "collection.name.format": f"test_orders_{suffix}",
            "errors.deadletterqueue.topic.name": f"test-orders-{suffix}-dlq",
        })
        config.update(overrides or {})
        made.append(config)
        connect.register.register(config, wait=True, timeout=120)
        return config

    yield make

    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    for config in made:
        connect.register.delete(config["name"])
        with orders_db.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS `{config['collection.name.format']}`"))
        topics = [config["topics"], config["errors.deadletterqueue.topic.name"]]
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            try:
                future.result(timeout=30)
            except Exception:  # never created (no bad record): nothing to clean
                pass
        try:
            admin.delete_consumer_groups([f"connect-{config['name']}"])[
                f"connect-{config['name']}"].result(timeout=30)
        except Exception:  # the group may still be settling after the delete; harmless
            pass
