"""The retention of applied_orders (catalog_svc/retention.py) on SQLite and the Kafka doubles: a row
goes once its event is below its partition's log start, no sooner; rows of other partitions and
rows without an origin stay; a failed round is logged and retried, never fatal."""

import threading
import time

import pytest
import sqlalchemy as sa
from confluent_kafka import KafkaError, KafkaException

from bus.clients import KafkaClients
from catalog_svc import stock
from catalog_svc.retention import AppliedRetention
from tests.doubles import Consumer, topic_metadata

TOPIC = "orders.accepted"


@pytest.fixture
def engine():
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False})
    stock.prepare(engine)
    yield engine
    engine.dispose()


def applied(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(stock.applied_orders.c.order_id)).scalars())


def apply(engine, *where):
    """Apply one order per (partition, offset), named p<partition>-<offset>."""
    stock.apply_orders(engine, [stock.Order(f"p{p}-{o}", "CATALOG-001", 1, p, o) for p, o in where])


def retention(engine, watermarks: dict[int, tuple[int, int]], consumer=None) -> AppliedRetention:
    consumer = consumer or Consumer(topic=TOPIC, topics={TOPIC: topic_metadata(len(watermarks))}, watermarks=watermarks)
    return AppliedRetention(engine, TOPIC, {}, every_s=0.01, clients=KafkaClients(consumer=lambda conf: consumer))


def test_rows_below_the_log_start_go_and_the_rest_stay(engine):
    apply(engine, (0, 3), (0, 4), (0, 5), (1, 0), (1, 9))
    stock.apply_orders(engine, [stock.Order("no-origin", "CATALOG-001", 1)])  # applied before the columns
    # Partition 0 starts at 5 now (4 and below deleted by Kafka); partition 1 still at 0.
    assert retention(engine, {0: (5, 6), 1: (0, 10)}).trim_once() == 2
    assert applied(engine) == {"p0-5", "p1-0", "p1-9", "no-origin"}
    # The positive control of "no sooner": the log start moved, the same retention trims again.
    assert retention(engine, {0: (6, 6), 1: (10, 10)}).trim_once() == 3
    assert applied(engine) == {"no-origin"}


def test_the_stock_is_untouched_by_a_trim(engine):
    apply(engine, (0, 0), (0, 1))
    before = stock.get_product(engine, "CATALOG-001")["stock"]
    retention(engine, {0: (2, 2)}).trim_once()
    assert stock.get_product(engine, "CATALOG-001")["stock"] == before and applied(engine) == set()


def test_a_redelivered_event_above_the_log_start_is_still_a_duplicate_after_a_trim(engine):
    apply(engine, (0, 0), (0, 1))
    retention(engine, {0: (1, 2)}).trim_once()
    again = stock.apply_orders(engine, [stock.Order("p0-1", "CATALOG-001", 1, 0, 1)])
    assert (again.applied, again.duplicates) == (0, 1)


def test_no_topic_yet_trims_nothing(engine):
    apply(engine, (0, 0))
    consumer = Consumer(topic=TOPIC, topics={})
    assert retention(engine, {}, consumer).trim_once() == 0 and applied(engine) == {"p0-0"}


class Unreachable(Consumer):
    def list_topics(self, topic=None, timeout=None):
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata"))


def test_a_failed_round_is_logged_and_the_loop_goes_on_then_closes(engine, caplog):
    consumer = Unreachable(topic=TOPIC)
    stop = threading.Event()
    looping = threading.Thread(target=retention(engine, {}, consumer).run, args=(stop,))
    looping.start()
    try:
        deadline = time.monotonic() + 10
        while "not trimmed this round" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        looping.join(5)
    assert "Failed to get metadata" in caplog.text and not looping.is_alive() and consumer.closed


def test_a_topic_it_may_not_describe_is_raised_not_taken_for_no_topic(engine):
    apply(engine, (0, 0))
    refused = Consumer(topic=TOPIC, topics={TOPIC: topic_metadata(0, KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))})
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        retention(engine, {}, refused).trim_once()
    # The positive control: an unknown topic is no topic yet, and nothing is trimmed.
    unknown = Consumer(topic=TOPIC, topics={TOPIC: topic_metadata(0, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))})
    assert retention(engine, {}, unknown).trim_once() == 0 and applied(engine) == {"p0-0"}
