"""The product view (order_svc/products.py on bus.compacted_view.CompactedView) with the Kafka
consumer double of tests/doubles.py: read from the beginning with assign(), ready at the ends of
the start, tombstones, records it cannot decode, how far behind it is, its metrics."""
import pytest
from confluent_kafka import KafkaError
from prometheus_client import CollectorRegistry

from bus import envelope
from order_svc import products
from order_svc.metrics import OrderMetrics
from ordersync.catalog.v1.catalog_service_pb2 import Product
from tests.doubles import Clock, KafkaDoubles, Message, topic_metadata

TOPIC = "catalog.products"


def change(product_id, offset, partition=0, unit_price=100, stock=5, ts=1_700_000_000_000):
    value = envelope.encode(Product(product_id=product_id, product_name=product_id, stock=stock, unit_price=unit_price))
    return Message(value, topic=TOPIC, partition=partition, offset=offset, key=product_id.encode(),
                   timestamp=(1, ts))


def tombstone(product_id, offset, partition=0):
    return Message(None, topic=TOPIC, partition=partition, offset=offset, key=product_id.encode())


def view_on(watermarks, messages=(), clock=None):
    """A view whose consumer double holds `messages` of a topic with `watermarks`, and what it told."""
    kafka, told = KafkaDoubles(), []
    view = products.product_view({"bootstrap.servers": "x:1"}, clients=kafka.clients,
                                  on_ready=lambda: told.append("ready"))
    if clock is not None:
        view._clock = clock
    consumer = kafka.consumer
    consumer.topics = {TOPIC: topic_metadata(len(watermarks))}
    consumer.watermarks = dict(watermarks)
    consumer.queue.extend(messages)
    return view, consumer, told


def test_reads_every_partition_from_its_first_offset_without_a_group_and_applies_in_order():
    view, consumer, told = view_on({0: (3, 6), 1: (0, 1), 2: (0, 0)})
    consumer.fetchable = {0: 3, 1: 0, 2: 0}  # nothing handed out yet: the positions are where assign() put them
    view.poll()
    assert consumer.assigned == [0, 1, 2] and consumer.positions == {0: 3, 1: 0, 2: 0} and told == []
    consumer.fetchable = {}
    consumer.queue.extend([change("A", 3, unit_price=100), change("A", 4, unit_price=120),
                           change("B", 0, partition=1), change("A", 5, unit_price=130)])
    view.poll()
    assert consumer.commits == [] and "group.id" in consumer.conf and consumer.conf["enable.auto.commit"] is False
    assert consumer.conf["isolation.level"] == "read_committed"
    view.poll()
    assert view.get("A").unit_price == 130 and view.get("B") is not None and len(view) == 2
    assert told == ["ready"] and view.ready


def test_not_ready_until_the_ends_of_the_start_are_reached():
    view, consumer, told = view_on({0: (0, 3)}, [change("A", 0)])
    consumer.fetchable = {0: 1}  # the broker has handed out offset 0 only
    for _ in range(3):
        view.poll()
    assert told == [] and not view.ready and view.behind_s() is None
    consumer.queue.extend([change("A", 1, unit_price=200), change("C", 2)])
    consumer.fetchable = {}
    view.poll()
    assert told == ["ready"] and view.get("A").unit_price == 200


def test_a_tombstone_removes_the_product_and_lookup_says_not_found():
    view, _, _ = view_on({0: (0, 2)}, [change("A", 0), tombstone("A", 1)])
    view.poll()
    view.poll()
    assert view.get("A") is None
    with pytest.raises(products.UnknownProduct, match="unknown product_id 'A'"):
        products.lookup(view, "A", max_behind_s=30)


def test_a_record_it_cannot_decode_is_counted_and_skipped_the_product_keeps_its_state(caplog):
    bad = Message(b'{"schema": {"type": "struct", "name": "other.Thing", "fields": []}, "payload": {}}',
                  topic=TOPIC, offset=1, key=b"A")
    view, _, told = view_on({0: (0, 4)}, [change("A", 0, unit_price=100), bad,
                                          Message(b"not json", topic=TOPIC, offset=2, key=b"A"),
                                          Message(b"{}", topic=TOPIC, offset=3, key=None)])
    view.poll()
    view.poll()
    assert view.stats.undecodable == 3 and view.get("A").unit_price == 100 and told == ["ready"]
    assert "A not decoded as ordersync.catalog.v1.Product" in caplog.text


def test_behind_grows_while_the_broker_cannot_be_asked_and_lookup_refuses_beyond_the_bound():
    clock = Clock(100.0)
    view, consumer, _ = view_on({0: (0, 1)}, [change("A", 0)], clock=clock)
    view.poll()
    view.poll()
    assert view.behind_s() == 0.0 and products.lookup(view, "A", max_behind_s=5).product_id == "A"
    consumer.watermarks, consumer.fetchable = {}, {0: 1}  # the broker unreachable: no end can be read
    for _ in range(3):
        clock.now += 2
        view.poll()
    assert view.behind_s() == 6.0
    with pytest.raises(products.ViewBehind, match="6s behind catalog.products"):
        products.lookup(view, "A", max_behind_s=5)
    consumer.watermarks = {0: (0, 1)}  # back: the next measure is reached at once
    clock.now += 2
    view.poll()
    view.poll()
    assert view.behind_s() == 0.0


def test_behind_is_measured_from_when_the_ends_were_asked_for_not_when_reached():
    clock = Clock(100.0)
    view, consumer, _ = view_on({0: (0, 2)}, [change("A", 0)], clock=clock)
    consumer.fetchable = {0: 1}
    view.poll()  # asks for the ends at 100: offset 2
    clock.now = 110.0
    view.poll()
    assert view.behind_s() is None
    consumer.queue.append(change("A", 1, unit_price=300))
    consumer.fetchable = {}
    view.poll()  # reached: the view holds what the topic held at 100
    assert view.behind_s() == 10.0 and view.lag() == {0: 1}  # as measured at 110


def test_no_topic_yet_waits_without_failing():
    kafka = KafkaDoubles()
    view = products.product_view({"bootstrap.servers": "x:1"}, clients=kafka.clients)
    kafka.consumer.topics = {TOPIC: topic_metadata(0, error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))}
    view.poll()
    assert not view.ready and kafka.consumer.assigned == [0] and kafka.consumer.positions == {}


def test_the_metrics_export_lag_behind_age_and_counts():
    clock = Clock(100.0)
    view, consumer, _ = view_on({0: (0, 3), 1: (0, 0)}, [change("A", 0, ts=1_700_000_000_000),
                                                         Message(b"bad", topic=TOPIC, offset=1, key=b"B"),
                                                         change("C", 2, ts=1_700_000_004_000)], clock=clock)
    registry = CollectorRegistry()
    OrderMetrics(registry).watch(view, wall_clock=lambda: 1_700_000_010.0)
    view.poll()
    view.poll()

    def sample(name, labels=None):
        return registry.get_sample_value(name, labels or {})
    assert sample("ordersync_product_view_lag", {"topic": TOPIC, "partition": "0"}) == 0
    assert sample("ordersync_product_view_behind_seconds") == 0.0
    assert sample("ordersync_product_view_newest_change_age_seconds") == 6.0
    assert (sample("ordersync_product_view_products"), sample("ordersync_product_view_ready")) == (2, 1)
    assert (sample("ordersync_product_view_applied_total"), sample("ordersync_product_view_undecodable_total")) == (2, 1)
