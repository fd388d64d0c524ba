"""Ids compare one way everywhere: case-sensitive, byte for byte, in Python and in every MariaDB
column, key and foreign key. Each refusal has its positive control in the same test."""

import time
import uuid

import grpc
import pytest
import sqlalchemy as sa

from order_svc.store import OrderStore
from ordersync.catalog.v1 import catalog_service_pb2
from ordersync.contract import sql
from ordersync.order.v1 import order_service_pb2
from tests.poisons import valid_envelope
from tests.support.kafka import read_topic
from tests.support.ledger import table_and_stock
from tests.support.products import wait_in_views
from tests.support.tables import add_product, stock_of
from tests.support.waiting import wait_for_row, wait_until


def place(stub, user_id, product_id, qty=1, request_id=None):
    return stub.CreateOrder(order_service_pb2.CreateOrderRequest(
        user_id=user_id, product_id=product_id, qty=qty, request_id=request_id or str(uuid.uuid4())),
        timeout=15).order


def test_a_product_id_in_another_case_is_not_that_product(topology, stack, order_stubs, catalog_stub):
    product = add_product(stack, "CASE")
    wait_in_views(topology, product)  # so that NOT_FOUND below is about the spelling, not the view
    for spelling in (product.lower(), product.swapcase(), product + " "):
        with pytest.raises(grpc.RpcError) as caught:
            place(order_stubs[0], "case-user", spelling)
        if spelling.endswith(" "):
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            continue
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND, spelling
        assert "case-sensitive" in caught.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            catalog_stub.GetProduct(catalog_service_pb2.GetProductRequest(product_id=spelling), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # Positive control: the exact spelling is the product.
    assert place(order_stubs[0], "case-user", product).product_id == product
    assert catalog_stub.GetProduct(catalog_service_pb2.GetProductRequest(product_id=product), timeout=10) \
        .product.product_id == product


def test_users_that_differ_in_case_are_two_users(stack, order_stubs, orders_db):
    run = uuid.uuid4().hex[:8]
    lower, upper = f"erin-{run}", f"Erin-{run}"
    request_id = str(uuid.uuid4())
    mine = place(order_stubs[0], lower, "CATALOG-001", request_id=request_id)
    theirs = place(order_stubs[1], upper, "CATALOG-002", qty=2, request_id=request_id)
    assert mine.order_id != theirs.order_id, "one request id of two users is two orders"
    for order in (mine, theirs):
        wait_for_row(orders_db, f"SELECT order_id FROM {stack.orders_table} WHERE order_id = :o",
                     {"o": order.order_id})
    for stub in order_stubs:
        for user, order in ((lower, mine), (upper, theirs)):
            listed = stub.ListOrders(order_service_pb2.ListOrdersRequest(user_id=user), timeout=10).orders
            assert [o.order_id for o in listed] == [order.order_id], f"{user} lists exactly their own"
        assert not stub.ListOrders(order_service_pb2.ListOrdersRequest(user_id=lower.upper()), timeout=10).orders


def test_an_order_id_in_another_case_is_not_that_order(stack, order_stubs, orders_db):
    order = place(order_stubs[0], f"case-{uuid.uuid4().hex[:8]}", "CATALOG-003")
    wait_for_row(orders_db, f"SELECT order_id FROM {stack.orders_table} WHERE order_id = :o", {"o": order.order_id})
    for stub in order_stubs:
        # Positive control first: the order as it was given.
        assert stub.GetOrder(order_service_pb2.GetOrderRequest(order_id=order.order_id), timeout=10) \
            .order.order_id == order.order_id
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetOrder(order_service_pb2.GetOrderRequest(order_id=order.order_id.upper()), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_raw_events_in_another_case_reach_neither_the_table_nor_the_stock(stack, producer, orders_db):
    run = uuid.uuid4().hex[:8]
    product = add_product(stack, "RAWCASE")
    before = stock_of(stack, product)
    keys = {"wrong": f"rawcase-{run}-x", "right": f"rawcase-{run}-y"}
    producer.send(stack.orders_topic, valid_envelope(keys["wrong"], "raw-user", product.lower()), key=keys["wrong"])
    # The same order id in upper case is another order: both are accepted.
    producer.send(stack.orders_topic, valid_envelope(keys["right"], "raw-user", product), key=keys["right"])
    producer.send(stack.orders_topic, valid_envelope(keys["right"].upper(), "raw-user", product),
                  key=keys["right"].upper())
    wait_until(lambda: table_and_stock(stack, product, before)["rows"] == 2 and stock_of(stack, product) == before - 2,
               timeout=60, what="the two accepted orders in the table and the stock")
    agreement = table_and_stock(stack, product, before)
    assert (agreement["only_table"], agreement["only_stock"], agreement["stock_drop_beyond"]) == (0, 0, 0)
    rejected = wait_until(lambda: [m for m in read_topic(stack.kafka_bootstrap, stack.rejected_topic)
                                   if m.key() == keys["wrong"].encode()], timeout=60, what="the refusal")
    assert len(rejected) == 1 and dict(rejected[0].headers())["dlq.error.class"] == b"UnknownProduct"
    time.sleep(2)
    with orders_db.connect() as conn:
        assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {stack.orders_table} WHERE order_id = :o"),
                            {"o": keys["wrong"]}).scalar() == 0


def test_every_id_column_compares_byte_for_byte(stack):
    engine = sa.create_engine(stack.mariadb_url())
    expected = {(stack.orders_db, stack.orders_table, c) for c in ("order_id", "user_id", "product_id")}
    expected |= {(stack.catalog_db, "products", "product_id"), (stack.catalog_db, "applied_orders", "order_id"),
                 (stack.catalog_db, "applied_orders", "product_id")}
    expected |= {(stack.gate_db, "first_events", c) for c in ("order_id", "user_id", "product_id")}
    try:
        with engine.connect() as conn:
            found = {(d, t, c): collation for d, t, c, collation in conn.execute(sa.text(
                "SELECT table_schema, table_name, column_name, collation_name FROM information_schema.columns"
                " WHERE table_schema IN (:o, :c, :g)"), {"o": stack.orders_db, "c": stack.catalog_db,
                                                         "g": stack.gate_db})}
            assert {k: found.get(k) for k in expected} == {k: sql.ID_COLLATION for k in expected}
            # And the server itself says so: no case, no trailing space is ignored.
            assert conn.execute(sa.text(f"SELECT _ascii'a' = _ascii'A' COLLATE {sql.ID_COLLATION}, "
                                        f"_ascii'a' = _ascii'a ' COLLATE {sql.ID_COLLATION}, "
                                        f"_ascii'a' = _ascii'a' COLLATE {sql.ID_COLLATION}")).one() == (0, 0, 1)
    finally:
        engine.dispose()


def test_the_coalesced_idempotency_read_finds_exactly_the_ids_asked(stack, order_stubs, orders_db):
    """OrderStore.get_many, CreateOrder's read of several order ids in one query, against the real
    table: each id found as spelled, another case or a trailing space is no order."""
    run = uuid.uuid4().hex[:8]
    placed = [place(order_stubs[i % 2], f"many-{run}", "CATALOG-001") for i in range(3)]
    for order in placed:
        wait_for_row(orders_db, f"SELECT order_id FROM {stack.orders_table} WHERE order_id = :o",
                     {"o": order.order_id})
    store = OrderStore(stack.mariadb_url(stack.orders_db), stack.orders_table)
    try:
        ids = [o.order_id for o in placed]
        others = [ids[0].upper(), ids[1] + " ", f"missing-{run}"]
        found = store.get_many(ids + others)
        assert sorted(found) == sorted(ids)
        assert all(found[o.order_id]["qty"] == o.qty and found[o.order_id]["user_id"] == o.user_id for o in placed)
        assert store.get_many(others) == {} and store.get_many([]) == {}
    finally:
        store.close()
