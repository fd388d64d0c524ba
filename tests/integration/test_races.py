"""Races the README promises something about: both sides must still agree afterwards."""
import threading
import uuid

import grpc
import sqlalchemy as sa

from ordersync.contract.event_rules import MAX_QTY
from ordersync.order.v1 import order_service_pb2
from tests.support.kafka import read_topic
from tests.support.products import wait_in_views
from tests.support.tables import add_product, user_rows
from tests.support.waiting import wait_for_user_rows, wait_until


def stock_of(services, product_id: str) -> int:
    with services.catalog_engine.connect() as conn:
        return conn.execute(sa.text("SELECT stock FROM products WHERE product_id = :p"), {"p": product_id}).scalar()


def create(stub, user_id, product_id, qty, request_id=None):
    return stub.CreateOrder(order_service_pb2.CreateOrderRequest(
        user_id=user_id, product_id=product_id, qty=qty, request_id=request_id or str(uuid.uuid4())), timeout=15)


def test_two_orders_racing_for_the_last_units_are_both_accepted_as_a_backorder(topology, stack, services, order_stubs):
    product_id = add_product(stack, "RACE", stock=3)
    wait_in_views(topology, product_id)
    user_id = f"race-{uuid.uuid4().hex[:8]}"
    # Hold the product row locked, so the Catalog cannot apply either order before both are
    # checked: both CreateOrder calls then see 3 units left (reads do not wait for the lock).
    holder = services.catalog_engine.connect()
    tx = holder.begin()
    holder.execute(sa.text("SELECT stock FROM products WHERE product_id = :p FOR UPDATE"), {"p": product_id})
    try:
        replies = [create(order_stubs[0], user_id, product_id, 3), create(order_stubs[1], user_id, product_id, 3)]
    finally:
        tx.rollback()
        holder.close()
    assert [r.order.qty for r in replies] == [3, 3]
    wait_until(lambda: stock_of(services, product_id) == -3, timeout=60, what="both orders applied")
    # A third order is now refused: the stock check sees the backorder once the new stock came
    # back into the Order instance's view through catalog.products (a probe for MAX_QTY, more than
    # this product ever had, is refused whatever the view says, and its refusal names the stock the
    # view holds; a qty above MAX_QTY would be refused before the view is asked).
    def view_stock_is(stock):
        try:
            create(order_stubs[0], user_id, product_id, MAX_QTY)
        except grpc.RpcError as e:
            return f"has {stock} units left" in e.details()
        return False
    wait_until(lambda: view_stock_is(-3), timeout=60, what="the backorder in the Order instance's view")
    try:
        create(order_stubs[0], user_id, product_id, 1)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    else:
        raise AssertionError("an order on a product with negative stock was accepted")


def test_same_request_id_with_other_content_on_both_instances_leaves_both_sides_agreeing(
        topology, stack, services, order_stubs, orders_db, kafka_bootstrap):
    product_id = add_product(stack, "RACE", stock=1000)
    wait_in_views(topology, product_id)
    user_id = f"reuse-{uuid.uuid4().hex[:8]}"
    request_id = str(uuid.uuid4())
    outcomes = [None, None]

    def call(i, qty):
        try:
            outcomes[i] = create(order_stubs[i], user_id, product_id, qty, request_id).order
        except grpc.RpcError as e:
            outcomes[i] = e.code()

    threads = [threading.Thread(target=call, args=(0, 1)), threading.Thread(target=call, args=(1, 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    accepted = [o for o in outcomes if not isinstance(o, grpc.StatusCode)]
    assert accepted, outcomes
    assert all(o in (grpc.StatusCode.ALREADY_EXISTS,) for o in outcomes if isinstance(o, grpc.StatusCode)), outcomes
    assert len({o.order_id for o in accepted}) == 1, "one request id is one order"

    # Whatever the interleaving, the table and the stock hold the same single order.
    (row,) = wait_for_user_rows(orders_db, stack.orders_table, user_id, 1)
    wait_until(lambda: stock_of(services, product_id) == 1000 - row.qty, timeout=60,
               what="the stock to match the order in the table")
    with services.catalog_engine.connect() as conn:
        applied = conn.execute(sa.text("SELECT qty FROM applied_orders WHERE order_id = :o"),
                               {"o": row.order_id}).scalar()
    assert applied == row.qty
    if len(accepted) == 2:  # both instances published: the gate refused the later event, once
        refused = wait_until(lambda: [m for m in read_topic(kafka_bootstrap, stack.rejected_topic)
                                      if m.key() == row.order_id.encode()], timeout=60,
                             what=f"the conflicting event in {stack.rejected_topic}")
        assert [dict(m.headers())["dlq.error.class"] for m in refused] == [b"OrderIdReused"]
        for topic in (stack.sink_dlq_topic, stack.catalog_dlq_topic):  # never got past the gate
            assert not [m for m in read_topic(kafka_bootstrap, topic) if m.key() == row.order_id.encode()]
    assert len(user_rows(orders_db, stack.orders_table, user_id)) == 1
