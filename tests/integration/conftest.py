"""The one fixture module for integration tests: they run against the real local stack.

Fixtures:
    stack           (session) starts or reuses MariaDB, Kafka and Connect; returns connect.settings
    sink_connector  (session) registers connect/orders-sink.json and waits until it RUNS; its name
    orders_db       (session) SQLAlchemy engine on the shared database orders_db
    kafka_bootstrap (session) "host:port" of the broker
    producer        (session) Producer whose send() returns once the broker acknowledged
    temp_connector  (function) factory: a private copy of the sink (own name, topic, table, DLQ),
                    deleted with its table and topics afterwards (connect.private_sink)

    services        (session) one Catalog and two Order instances on free ports, on a topic,
                    sink table and catalog database of their own
    order_stubs, catalog_stub (session) gRPC stubs for them

Helpers: wait_until(check, ...), wait_for_row(engine, sql, params, ...),
user_rows / wait_for_user_rows(engine, table, user_id, ...), consumer_lag(bootstrap, group, topic).
"""
import json
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
import sqlalchemy as sa

import connect.register
import connect.stack
from connect import private_sink, settings
from demo import services as launcher
from demo.services import Service
from ordersync.catalog.v1 import catalog_service_pb2_grpc
from ordersync.order.v1 import order_service_pb2_grpc

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


def user_rows(engine: sa.Engine, table: str, user_id: str) -> list:
    """A user's rows in an orders table the sink writes ([] until the sink has created it)."""
    with engine.connect() as conn:
        try:
            return conn.execute(sa.text(f"SELECT * FROM {table} WHERE user_id = :u"), {"u": user_id}).all()
        except sa.exc.ProgrammingError:
            return []


def wait_for_user_rows(engine: sa.Engine, table: str, user_id: str, count: int, timeout: float = 60) -> list:
    """Poll until the user has exactly `count` rows in the table; return them."""
    def complete():
        rows = user_rows(engine, table, user_id)
        return rows if len(rows) == count else None
    return wait_until(complete, timeout=timeout, what=f"{count} rows of {user_id} in {table}")


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
    """Factory: make(overrides=None, base=orders-sink.json) -> the config of a private sink
    (see connect.private_sink), removed with its table and topics after the test."""
    made = []

    def make(overrides: dict | None = None, base: str | Path = ORDERS_SINK_JSON) -> dict:
        made.append(private_sink.create(overrides, base))
        return made[-1]

    yield make
    for config in made:
        private_sink.remove(config)


# --- the gRPC services under test ---------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def services(stack):
    """One Catalog and two Order instances on free ports, on a topic and a sink table of their
    own (a private copy of the orders sink) and with a fresh catalog database, so that tests
    neither see nor change the stock and orders of `make run`."""
    sink = private_sink.create()
    catalog_db = sink["collection.name.format"].replace("test_orders_", "ordersync_test_catalog_")
    group = f"catalog-{sink['name']}"
    admin_engine = sa.create_engine(settings.sqlalchemy_url(""), pool_pre_ping=True)
    with admin_engine.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{catalog_db}`"))
    shared = {"ORDERS_TOPIC": sink["topics"]}
    port = _free_port()
    catalog = Service("test-catalog", "catalog_svc", port,
                      {**shared, "CATALOG_PORT": str(port), "CATALOG_DB": catalog_db,
                       "CATALOG_CONSUMER_GROUP": group})
    orders = []
    for i in (1, 2):
        port = _free_port()
        orders.append(Service(f"test-order-{i}", "order_svc", port,
                              {**shared, "ORDER_PORT": str(port), "ORDER_INSTANCE": f"test-order-{i}",
                               "CATALOG_ADDRESS": catalog.address,
                               "ORDERS_TABLE": sink["collection.name.format"]}))
    running = []
    try:
        for svc in (catalog, *orders):
            launcher.start(svc)
            running.append(svc)
        yield SimpleNamespace(catalog=catalog, orders=orders, catalog_db=catalog_db, consumer_group=group,
                              orders_topic=sink["topics"], orders_table=sink["collection.name.format"],
                              catalog_engine=sa.create_engine(settings.sqlalchemy_url(catalog_db),
                                                              pool_pre_ping=True))
    finally:
        for svc in reversed(running):
            launcher.stop(svc)
        with admin_engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{catalog_db}`"))
        admin_engine.dispose()
        private_sink.remove(sink)


@pytest.fixture(scope="session")
def order_stubs(services):
    channels = [grpc.insecure_channel(svc.address) for svc in services.orders]
    yield [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
    for c in channels:
        c.close()


@pytest.fixture(scope="session")
def catalog_stub(services):
    with grpc.insecure_channel(services.catalog.address) as channel:
        yield catalog_service_pb2_grpc.CatalogServiceStub(channel)
