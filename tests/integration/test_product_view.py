"""Every Order instance prices its orders from its own view of catalog.products (the source
connector's change stream), on the real stack: a price changed in the table reaches the next
CreateOrder on both instances with the Catalog process stopped; an order lowers the stock in the
Catalog and the new stock comes back into the views by the same stream (the loop closes); a
deleted product becomes NOT_FOUND."""
import time

import grpc
import pytest

from ordersync.order.v1 import order_service_pb2
from tests.support.products import change_product, order, priced_at
from tests.support.tables import add_product, stock_of
from tests.support.waiting import wait_until

DEADLINE_S = 90  # generous: the binlog, the connector, the broker and the view, on a busy machine


@pytest.fixture
def catalog_stopped(topology):
    """The Catalog process stopped for the test, started again after it (it then applies the orders
    placed meanwhile)."""
    catalog = topology.catalogs[0]
    topology.supervisor.stop(catalog, grace=20)
    yield
    topology.supervisor.ensure_up(catalog, timeout=60)


def test_a_price_change_reaches_both_order_instances_with_the_catalog_stopped(stack, order_stubs, catalog_stopped):
    product_id = add_product(stack, "VIEW", unit_price=100)
    for stub in order_stubs:
        wait_until(lambda stub=stub: priced_at(stub, product_id, 100), timeout=DEADLINE_S,
                   what=f"{product_id} in the view")
    began = time.monotonic()
    change_product(stack, "UPDATE products SET unit_price = 275 WHERE product_id = :p", product_id)
    for i, stub in enumerate(order_stubs, start=1):
        wait_until(lambda stub=stub: priced_at(stub, product_id, 275), timeout=DEADLINE_S, interval=0.1,
                   what=f"the new price of {product_id} on Order instance {i}")
        print(f"\nnew price on order-{i} {time.monotonic() - began:.2f}s after the UPDATE (Catalog stopped)")


def test_an_order_lowers_the_stock_and_the_new_stock_reaches_the_views(stack, order_stubs):
    product_id = add_product(stack, "LOOP", stock=10, unit_price=100)
    # A probe for more than there is is always refused, and its refusal names the view's stock.
    probe = [f"product {product_id} has {n} units left, 11 were ordered" for n in (10, 7)]
    for stub in order_stubs:
        wait_until(lambda stub=stub: probe[0] in str(getattr(order(stub, product_id, 11), "details", lambda: "")()),
                   timeout=DEADLINE_S, what=f"{product_id} with 10 units in the view")
    began = time.monotonic()
    placed = order(order_stubs[0], product_id, qty=3)
    assert isinstance(placed, order_service_pb2.CreateOrderResponse), placed
    wait_until(lambda: stock_of(stack, product_id) == 7, timeout=DEADLINE_S, what="the Catalog to lower the stock")
    applied = time.monotonic() - began
    for i, stub in enumerate(order_stubs, start=1):
        refusal = wait_until(lambda stub=stub: (r := order(stub, product_id, 11)) is not None
                             and probe[1] in str(getattr(r, "details", lambda: "")()) and r,
                             timeout=DEADLINE_S, interval=0.1, what=f"7 units of {product_id} on Order instance {i}")
        assert refusal.code() == grpc.StatusCode.FAILED_PRECONDITION
        print(f"\nstock 7 in the table {applied:.2f}s after the order, in order-{i}'s view "
              f"{time.monotonic() - began:.2f}s after it")


def test_a_deleted_product_becomes_not_found(stack, order_stubs):
    # Never ordered (the orders table's foreign key would keep the row): seen in the views through
    # a probe for more than its stock, which is refused and names the stock the view holds.
    product_id = add_product(stack, "GONE", stock=1, unit_price=100)
    seen = f"product {product_id} has 1 units left, 2 were ordered"
    for stub in order_stubs:
        wait_until(lambda stub=stub: seen in str(getattr(order(stub, product_id, 2), "details", lambda: "")()),
                   timeout=DEADLINE_S, what=f"{product_id} in the view")
    began = time.monotonic()
    change_product(stack, "DELETE FROM products WHERE product_id = :p", product_id)
    for i, stub in enumerate(order_stubs, start=1):
        refusal = wait_until(lambda stub=stub: isinstance(r := order(stub, product_id), grpc.RpcError)
                             and r.code() == grpc.StatusCode.NOT_FOUND and r,
                             timeout=DEADLINE_S, interval=0.1, what=f"{product_id} NOT_FOUND on Order instance {i}")
        assert f"unknown product_id {product_id!r}" in refusal.details()
        print(f"\nNOT_FOUND on order-{i} {time.monotonic() - began:.2f}s after the DELETE")
