"""The course scenario end to end: two Order instances, one shared MariaDB table, catalog stock in sync."""

import time
import uuid

import grpc
import sqlalchemy as sa

from bus.producer import EventProducer
from ordersync.catalog.v1 import catalog_service_pb2
from ordersync.order.v1 import order_event_pb2, order_service_pb2
from tests.support.kafka import consumer_lag
from tests.support.tables import user_rows
from tests.support.waiting import wait_for_user_rows, wait_until

ORDERS = [("CATALOG-001", 5), ("CATALOG-002", 3), ("CATALOG-001", 2), ("CATALOG-003", 4), ("CATALOG-002", 1)]


def stock(catalog_stub) -> dict[str, int]:
    reply = catalog_stub.ListProducts(catalog_service_pb2.ListProductsRequest(), timeout=5)
    return {p.product_id: p.stock for p in reply.products}


def create(stub, user_id, product_id, qty, request_id=None):
    return stub.CreateOrder(order_service_pb2.CreateOrderRequest(
        user_id=user_id, product_id=product_id, qty=qty, request_id=request_id or str(uuid.uuid4())),
        timeout=15).order


def end_offset(kafka_bootstrap, topic) -> int:
    from confluent_kafka import Consumer, TopicPartition
    probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "offset-probe"})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        probe.close()


def caught_up(services, bootstrap) -> bool:
    """The gate has decided everything published, the Catalog has applied everything accepted."""
    return (consumer_lag(bootstrap, services.gate_group, services.orders_topic) == 0
            and consumer_lag(bootstrap, services.consumer_group, services.accepted_topic) == 0)


def test_five_orders_on_two_instances_land_in_one_table_and_lower_stock_once(
        services, order_stubs, catalog_stub, orders_db, kafka_bootstrap):
    # Earlier tests may still have events in flight: read `before` once the Catalog caught up.
    wait_until(lambda: caught_up(services, kafka_bootstrap), timeout=120, what="the catalog to apply earlier events")
    before = stock(catalog_stub)
    assert {"CATALOG-001", "CATALOG-002", "CATALOG-003"} <= set(before)  # other tests add products
    user_id = f"course-{uuid.uuid4().hex[:8]}"
    placed = [create(order_stubs[i % 2], user_id, product_id, qty) for i, (product_id, qty) in enumerate(ORDERS)]
    prices = {"CATALOG-001": 1500, "CATALOG-002": 1000, "CATALOG-003": 2000}
    for order, (product_id, qty) in zip(placed, ORDERS):
        assert (order.product_id, order.qty, order.unit_price) == (product_id, qty, prices[product_id])
        assert order.total_price == qty * prices[product_id]

    rows = wait_for_user_rows(orders_db, services.orders_table, user_id, 5)
    assert {(r.order_id, r.product_id, r.qty, r.unit_price, r.total_price) for r in rows} == {
        (o.order_id, o.product_id, o.qty, o.unit_price, o.total_price) for o in placed}

    expected = {**before, "CATALOG-001": before["CATALOG-001"] - 7, "CATALOG-002": before["CATALOG-002"] - 4,
                "CATALOG-003": before["CATALOG-003"] - 4}
    wait_until(lambda: stock(catalog_stub) == expected, timeout=60, what="catalog stock lowered by the orders")

    # The same event delivered twice more, to the gate (which drops repeats) and past it straight
    # to the accepted topic (the Catalog's applied orders make it a no-op): the stock stays.
    first = placed[0]
    duplicate = order_event_pb2.OrderPlaced(
        order_id=first.order_id, user_id=first.user_id, product_id=first.product_id, qty=first.qty,
        unit_price=first.unit_price, total_price=first.total_price, created_at=first.created_at)
    for topic in (services.orders_topic, services.accepted_topic):
        with EventProducer(topic, "order_id", client={"bootstrap.servers": kafka_bootstrap}) as producer:
            producer.publish(duplicate)
            producer.publish(duplicate)
    wait_until(lambda: caught_up(services, kafka_bootstrap), timeout=60, what="the catalog to consume the duplicates")
    assert stock(catalog_stub) == expected
    with services.catalog_engine.connect() as conn:
        applied = conn.execute(sa.text("SELECT COUNT(*) FROM applied_orders WHERE order_id = :o"),
                               {"o": first.order_id}).scalar()
    assert applied == 1
    # ...and the sink's upsert keeps one row per order.
    assert len(user_rows(orders_db, services.orders_table, user_id)) == 5


def test_retried_request_returns_the_same_order_and_publishes_nothing(services, order_stubs, kafka_bootstrap, orders_db):
    user_id = f"retry-{uuid.uuid4().hex[:8]}"
    request_id = str(uuid.uuid4())
    first = create(order_stubs[0], user_id, "CATALOG-003", 1, request_id)
    end = end_offset(kafka_bootstrap, services.orders_topic)
    again = create(order_stubs[0], user_id, "CATALOG-003", 1, request_id)
    assert again == first
    assert end_offset(kafka_bootstrap, services.orders_topic) == end, "the retry published a second event"
    # A retry on the other instance, once the row is in the shared table, is recognised too.
    wait_for_user_rows(orders_db, services.orders_table, user_id, 1)
    other = create(order_stubs[1], user_id, "CATALOG-003", 1, request_id)
    assert other.order_id == first.order_id
    assert end_offset(kafka_bootstrap, services.orders_topic) == end


def test_reused_request_id_with_other_content_is_refused(order_stubs):
    user_id = f"reuse-{uuid.uuid4().hex[:8]}"
    request_id = str(uuid.uuid4())
    create(order_stubs[0], user_id, "CATALOG-001", 1, request_id)
    try:
        create(order_stubs[0], user_id, "CATALOG-001", 2, request_id)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.ALREADY_EXISTS
        assert request_id in e.details()
    else:
        raise AssertionError("a reused request_id with another qty was accepted")


def test_get_and_list_orders_read_the_shared_table(services, order_stubs, orders_db):
    user_id = f"list-{uuid.uuid4().hex[:8]}"
    placed = []
    for i in range(5):
        placed.append(create(order_stubs[i % 2], user_id, "CATALOG-002", 1))
        time.sleep(0.01)  # distinct created_at values, so "newest first" is well defined
    wait_for_user_rows(orders_db, services.orders_table, user_id, 5)

    got = order_stubs[1].GetOrder(order_service_pb2.GetOrderRequest(order_id=placed[0].order_id), timeout=5).order
    assert got == placed[0]

    seen, token = [], ""
    while True:
        page = order_stubs[0].ListOrders(
            order_service_pb2.ListOrdersRequest(user_id=user_id, page_size=2, page_token=token), timeout=5)
        assert len(page.orders) <= 2
        seen.extend(page.orders)
        token = page.next_page_token
        if not token:
            break
    assert [o.order_id for o in seen] == [o.order_id for o in reversed(placed)]
    assert seen == list(reversed(placed))

