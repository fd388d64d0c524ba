"""Stock changes against the real MariaDB: once per order id, in one transaction with the record
of it; which database failures are transient; bad events through the running Catalog."""

import contextlib
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import CollectorRegistry

from bus.consumer import EventConsumer
from bus.dead_letters import H_ERROR_MESSAGE
from bus.envelope import encode
from bus.failures import PermanentError, TransientError
from bus.producer import EventProducer
from catalog_svc import stock
from catalog_svc.metrics import CatalogMetrics
from catalog_svc.retention import AppliedRetention
from catalog_svc.server import order_events_handler
from ordersync.order.v1 import order_event_pb2
from tests.support.kafka import consumer_lag
from tests.support.waiting import wait_until


@contextlib.contextmanager
def catalog_database(stack):
    """The URL of a catalog database of its own, prepared, dropped afterwards."""
    name = f"ordersync_test_stock_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(stack.mariadb_url(""), pool_pre_ping=True)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}`"))
    engine = stock.create_engine(stack.mariadb_url(name))
    stock.prepare(engine)
    engine.dispose()
    try:
        yield stack.mariadb_url(name)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(scope="module")
def catalog_url(stack):
    """This module's catalog database."""
    with catalog_database(stack) as url:
        yield url


@pytest.fixture
def catalog_engine(catalog_url):
    engine = stock.create_engine(catalog_url)
    yield engine
    engine.dispose()


def product_stock(engine, product_id):
    return stock.get_product(engine, product_id)["stock"]


def applied(engine, order_id):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM applied_orders WHERE order_id = :o"),
                            {"o": order_id}).scalar()


def dead_letters(bootstrap, topic, key, count, timeout=60):
    """The records with `key` in a dead-letter topic, once `count` of them are there."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        partitions = wait_until(lambda: c.list_topics(topic, timeout=5).topics[topic].partitions,
                                timeout=timeout, what=f"topic {topic}")
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        found, deadline = [], time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error() and m.key() == key:
                found.append(m)
        return found
    finally:
        c.close()


def test_apply_order_is_idempotent_per_order_id(catalog_engine):
    before = product_stock(catalog_engine, "CATALOG-003")
    order_id = str(uuid.uuid4())
    assert stock.apply_order(catalog_engine, order_id, "CATALOG-003", 3) is True
    assert stock.apply_order(catalog_engine, order_id, "CATALOG-003", 3) is False
    assert product_stock(catalog_engine, "CATALOG-003") == before - 3


def test_unknown_product_changes_nothing(catalog_engine):
    order_id = str(uuid.uuid4())
    with pytest.raises(stock.UnknownProduct, match="CATALOG-404"):
        stock.apply_order(catalog_engine, order_id, "CATALOG-404", 1)
    assert applied(catalog_engine, order_id) == 0, \
        "the applied-order row must roll back with the failed stock change"


def test_order_id_reused_with_other_content_is_permanent(catalog_engine):
    order_id = str(uuid.uuid4())
    assert stock.apply_order(catalog_engine, order_id, "CATALOG-002", 2) is True
    before = product_stock(catalog_engine, "CATALOG-002")
    with pytest.raises(stock.OrderIdReused, match="reused with different content"):
        stock.apply_order(catalog_engine, order_id, "CATALOG-002", 5)
    assert product_stock(catalog_engine, "CATALOG-002") == before


def test_data_the_table_cannot_hold_is_permanent_and_a_batch_holding_it_changes_nothing(catalog_engine):
    # An order id longer than the column: MariaDB's strict mode refuses it (1406).
    before = product_stock(catalog_engine, "CATALOG-001")
    with pytest.raises(PermanentError, match="refuses it"):
        stock.apply_order(catalog_engine, "O" * 65, "CATALOG-001", 1)
    with pytest.raises(PermanentError, match="refuses it"):
        stock.apply_orders(catalog_engine, [stock.Order(str(uuid.uuid4()), "CATALOG-001", 1),
                                            stock.Order("O" * 65, "CATALOG-001", 1)])
    assert product_stock(catalog_engine, "CATALOG-001") == before
    # A product id longer than the column names no product the catalog has.
    with pytest.raises(stock.UnknownProduct):
        stock.apply_order(catalog_engine, str(uuid.uuid4()), "P" * 65, 1)


def test_a_lock_wait_timeout_is_transient_and_passes_once_the_lock_is_gone(catalog_url,
                                                                           catalog_engine):
    impatient = sa.create_engine(catalog_url, connect_args={
        "init_command": "SET SESSION innodb_lock_wait_timeout = 1"})
    order_id = str(uuid.uuid4())
    holder = catalog_engine.connect()
    try:
        tx = holder.begin()
        holder.execute(sa.text("UPDATE products SET stock = stock WHERE product_id = 'CATALOG-001'"))
        with pytest.raises(TransientError, match="lock wait timeout"):
            stock.apply_order(impatient, order_id, "CATALOG-001", 1)
        tx.rollback()
        assert stock.apply_order(impatient, order_id, "CATALOG-001", 1) is True
    finally:
        holder.close()
        impatient.dispose()


def test_an_unreachable_database_is_transient():
    nowhere = stock.create_engine("mysql+pymysql://ordersync:ordersync@127.0.0.1:1/catalog_db")
    with pytest.raises(TransientError, match="cannot connect"):
        stock.apply_order(nowhere, str(uuid.uuid4()), "CATALOG-001", 1)


def test_prepare_keeps_existing_stock_and_adds_missing_seeds(catalog_engine):
    # The precondition is set here: stock that differs from the seed, and one seed product gone.
    with catalog_engine.begin() as conn:
        conn.execute(stock.products.update().where(stock.products.c.product_id == "CATALOG-001").values(stock=7))
        conn.execute(stock.products.delete().where(stock.products.c.product_id == "CATALOG-003"))
    stock.prepare(catalog_engine)
    after = {p["product_id"]: p["stock"] for p in stock.list_products(catalog_engine)}
    seeds = {p["product_id"]: p["stock"] for p in stock.SEED_PRODUCTS}
    assert after["CATALOG-001"] == 7 != seeds["CATALOG-001"]
    assert after["CATALOG-003"] == seeds["CATALOG-003"]


def test_bad_events_past_the_gate_are_dead_lettered_and_the_catalogs_consumer_goes_on(catalog_url, kafka_bootstrap):
    """Written past the gate (a topic of its own here: on the stack's accepted topic they would stop
    the sink, by design): the Catalog's consumer and handler still check every event by the same
    rules, so none can raise stock, and go on with the next."""
    run = uuid.uuid4().hex[:8]
    topic, dlq, group = f"test-past-gate-{run}", f"test-past-gate-{run}.dlq", f"past-gate-{run}"

    def placed(order_id, qty):
        return encode(order_event_pb2.OrderPlaced(
            order_id=order_id, user_id="user-1", product_id="CATALOG-002", qty=qty, unit_price=1000,
            total_price=qty * 1000, created_at=Timestamp(seconds=1_700_000_000)))

    # One key, so one partition: the good event comes after the bad ones.
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    for value in (b"\xff\xfe not an envelope", placed(f"{run}-raise", -5), placed(f"{run}-ok", 1)):
        raw.produce(topic, key=run.encode(), value=value)
    assert raw.flush(10) == 0
    engine = stock.create_engine(catalog_url)
    consumer = EventConsumer(topic, order_event_pb2.OrderPlaced, group, dlq_topic=dlq,
                             client={"bootstrap.servers": kafka_bootstrap},
                             batch_handler=order_events_handler(engine, CatalogMetrics(CollectorRegistry())))
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: applied(engine, f"{run}-ok"), timeout=60,
                   what="the good event after the bad ones to be applied")
        assert applied(engine, f"{run}-raise") == 0
        reasons = {m.value(): dict(m.headers())[H_ERROR_MESSAGE].decode()
                   for m in dead_letters(kafka_bootstrap, dlq, run.encode(), 2)}
    finally:
        stop.set()
        thread.join(30)
        consumer.close()
        engine.dispose()
    assert "not UTF-8" in reasons[b"\xff\xfe not an envelope"]
    assert "qty must be 1 to 10000, got -5" in reasons[placed(f"{run}-raise", -5)]


def consume_all(engine, kafka_bootstrap: str, topic: str, group: str) -> dict:
    """Run the Catalog's handler over all of `topic` as `group` until it committed the end; its counts."""
    registry = CollectorRegistry()
    consumer = EventConsumer(topic, order_event_pb2.OrderPlaced, group, client={"bootstrap.servers": kafka_bootstrap},
                             batch_handler=order_events_handler(engine, CatalogMetrics(registry)))
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: consumer_lag(kafka_bootstrap, group, topic) == 0, timeout=180,
                   what=f"group {group} to commit all of {topic}")
    finally:
        stop.set()
        thread.join(30)
        consumer.close()
    return {name: registry.get_sample_value(f"ordersync_{name}") for name in
            ("events_applied_total", "events_duplicate_total", "event_handler_seconds_count")}


def test_a_backlog_is_applied_in_batches_once_and_a_whole_redelivery_changes_nothing(catalog_url, kafka_bootstrap):
    topic = f"test-batches-{uuid.uuid4().hex[:8]}"
    created_at = Timestamp()
    created_at.GetCurrentTime()
    products = ["CATALOG-001", "CATALOG-002", "CATALOG-003"]
    events = [order_event_pb2.OrderPlaced(order_id=str(uuid.uuid4()), user_id="batcher", product_id=products[i % 3],
                                          qty=1 + i % 4, unit_price=100, total_price=100 * (1 + i % 4),
                                          created_at=created_at) for i in range(1500)]
    with EventProducer(topic, "order_id", client={"bootstrap.servers": kafka_bootstrap}) as producer:
        producer.publish_many(events)
    engine = stock.create_engine(catalog_url)
    before = {p: product_stock(engine, p) for p in products}

    first = consume_all(engine, kafka_bootstrap, topic, f"batches-{uuid.uuid4().hex[:6]}")
    # A new group: every event comes again.
    again = consume_all(engine, kafka_bootstrap, topic, f"batches-{uuid.uuid4().hex[:6]}")
    assert (first["events_applied_total"], first["events_duplicate_total"]) == (1500, 0)
    assert first["event_handler_seconds_count"] < 1500 / 5, first  # batches, not one call per event
    assert (again["events_applied_total"], again["events_duplicate_total"]) == (0, 1500)
    lowered = {p: sum(e.qty for e in events if e.product_id == p) for p in products}
    assert {p: product_stock(engine, p) for p in products} == {p: before[p] - lowered[p] for p in products}
    engine.dispose()


def test_applied_orders_keeps_a_row_while_kafka_can_deliver_its_event_and_no_longer(stack, kafka_bootstrap):
    """Kafka deletes the first half of each partition; the retention trims exactly those rows, and
    a group reading the topic again from its start (as after reset or expired offsets) finds every
    event still there applied: nothing twice, the stock unchanged. On a database of its own, as a
    Catalog's is: the offsets of applied_orders are those of the one topic it reads."""
    topic = f"test-retention-{uuid.uuid4().hex[:8]}"
    created_at = Timestamp()
    created_at.GetCurrentTime()
    events = [order_event_pb2.OrderPlaced(order_id=str(uuid.uuid4()), user_id="keeper", product_id="CATALOG-002",
                                          qty=1, unit_price=100, total_price=100, created_at=created_at)
              for _ in range(300)]
    with EventProducer(topic, "order_id", client={"bootstrap.servers": kafka_bootstrap}) as producer:
        producer.publish_many(events)
    with catalog_database(stack) as catalog_url:
        trim_one_topic(catalog_url, kafka_bootstrap, topic, events)


def trim_one_topic(catalog_url, kafka_bootstrap, topic, events):
    engine = stock.create_engine(catalog_url)
    mine = sa.select(stock.applied_orders.c.accepted_partition, stock.applied_orders.c.accepted_offset).where(
        stock.applied_orders.c.order_id.in_([e.order_id for e in events]))
    try:
        assert consume_all(engine, kafka_bootstrap, topic, f"kept-{uuid.uuid4().hex[:6]}")["events_applied_total"] == 300
        with engine.connect() as conn:
            rows = conn.execute(mine).all()
        ends = {}
        for partition, offset in rows:
            ends[partition] = max(ends.get(partition, 0), offset + 1)
        assert len(rows) == 300 and sum(ends.values()) == 300  # every row knows where its event is
        halves = {p: end // 2 for p, end in ends.items()}
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for future in admin.delete_records([TopicPartition(topic, p, half) for p, half in halves.items()],
                                           operation_timeout=30).values():
            future.result(timeout=30)
        stock_before = product_stock(engine, "CATALOG-002")

        retention = AppliedRetention(engine, topic, {"bootstrap.servers": kafka_bootstrap}, every_s=60)
        try:
            trimmed = retention.trim_once()
        finally:
            retention.close()
        with engine.connect() as conn:
            kept = conn.execute(mine).all()
        assert trimmed == sum(halves.values())
        # The positive control: every row whose event Kafka still has is there.
        assert sorted(kept) == sorted((p, o) for p, end in ends.items() for o in range(halves[p], end))

        again = consume_all(engine, kafka_bootstrap, topic, f"again-{uuid.uuid4().hex[:6]}")
        assert (again["events_applied_total"], again["events_duplicate_total"]) == (0, len(kept))
        assert product_stock(engine, "CATALOG-002") == stock_before
    finally:
        engine.dispose()
