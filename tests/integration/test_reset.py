"""`make reset` on the tests' private stack (its settings as the environment: never the stack of
`make run`): an order seen in the table, the stock, the gate's and the Catalog's memory and the
topics, and a refused record, are all gone afterwards, the stock is back at seed, and the stack
takes the next order without a restart."""

import os
import subprocess
import sys
import uuid

import sqlalchemy as sa

from catalog_svc import stock
from ordersync.config import ROOT
from ordersync.order.v1 import order_service_pb2
from stack import reset
from stack.topology import free_port
from tests.support.kafka import read_topic
from tests.support.tables import stock_of
from tests.support.waiting import wait_for_user_rows, wait_until

PRODUCT = "CATALOG-002"
SEED = {p["product_id"]: p["stock"] for p in stock.SEED_PRODUCTS}


def count(settings, database: str, table: str, where: str = "", **params) -> int:
    engine = sa.create_engine(settings.mariadb_url(database))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT COUNT(*) FROM `{table}` {where}"), params).scalar_one()
    finally:
        engine.dispose()


def place(order_stub, user_id: str, qty: int):
    return order_stub.CreateOrder(order_service_pb2.CreateOrderRequest(
        user_id=user_id, product_id=PRODUCT, qty=qty, request_id=str(uuid.uuid4())), timeout=15).order


def records(settings) -> dict[str, int]:
    return {topic: len(read_topic(settings.kafka_bootstrap, topic)) for topic in reset.data_topics(settings)}


def test_make_reset_empties_the_demo_s_data(topology, stack, order_stubs, orders_db, producer):
    # Before: an order in every place the reset empties, and a refused record.
    user = f"reset-{uuid.uuid4().hex[:8]}"
    stock_before = stock_of(stack, PRODUCT)
    order = place(order_stubs[0], user, 3)
    producer.send(stack.orders_topic, b"not an envelope", key=f"reset-poison-{user}")
    wait_for_user_rows(orders_db, stack.orders_table, user, 1)
    wait_until(lambda: stock_of(stack, PRODUCT) == stock_before - 3, what=f"the stock of {PRODUCT} to fall by 3")
    wait_until(lambda: records(stack)[stack.rejected_topic] >= 1, what="the refused record in the rejected topic")
    assert count(stack, stack.gate_db, "first_events", "WHERE order_id = :o", o=order.order_id) == 1
    assert count(stack, stack.catalog_db, "applied_orders", "WHERE order_id = :o", o=order.order_id) == 1
    before = records(stack)
    assert before[stack.orders_topic] >= 2 and before[stack.accepted_topic] >= 1, before
    metrics_ports = {part.name: reset.process_environment(topology.supervisor.pid(part)).get("METRICS_PORT")
                     for part in [*topology.gates, *topology.catalogs]}

    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(["make", "--no-print-directory", "reset"], cwd=ROOT, env={**env, **stack.to_env()},
                            capture_output=True, text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"reset: the demo's data of {stack.stack_dir}" in result.stdout  # the private stack's, nothing else

    # After: nothing of it anywhere, the stock at seed.
    assert records(stack) == dict.fromkeys(reset.data_topics(stack), 0)
    assert count(stack, stack.orders_db, stack.orders_table) == 0
    assert count(stack, stack.gate_db, "first_events") == 0
    assert count(stack, stack.catalog_db, "applied_orders") == 0
    assert {product: stock_of(stack, product) for product in SEED} == SEED
    # The gate and the Catalog ran again with the environment they had (their own metrics ports).
    assert {part.name: reset.process_environment(topology.supervisor.pid(part)).get("METRICS_PORT")
            for part in [*topology.gates, *topology.catalogs]} == metrics_ports

    # And the stack takes the next order, table and stock alike, with no restart by the user.
    again = place(order_stubs[1], user, 2)
    rows = wait_for_user_rows(orders_db, stack.orders_table, user, 1)
    assert rows[0].order_id == again.order_id
    wait_until(lambda: stock_of(stack, PRODUCT) == SEED[PRODUCT] - 2, what=f"the stock of {PRODUCT} to fall by 2")


def test_reset_refuses_a_stack_that_does_not_run(tmp_path):
    ports = {name: str(free_port()) for name in ("MARIADB_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "CONNECT_PORT")}
    result = subprocess.run([sys.executable, "-m", "stack", "reset"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "STACK_DIR": str(tmp_path), **ports})
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ("stack reset failed: mariadb, kafka, connect not running: `make stack-up` starts the "
                             "stack; nothing was reset\n")
