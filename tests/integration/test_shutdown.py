"""SIGTERM stops the Order service cleanly: calls in flight finish and are published, the process exits 0.

To have calls certainly in flight when the signal arrives, the extra Order instance is
tests/support/held_order.py: it holds every publish inside CreateOrder until the test has sent
the signal, seen the shutdown begin, and let the publishes go (SIGUSR1).
"""

import dataclasses
import os
import signal
import sys
import threading
import uuid

import grpc

from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from stack.topology import free_port, service_part
from tests.support import held_order
from tests.support.kafka import read_topic
from tests.support.waiting import wait_for_user_rows, wait_until

IN_FLIGHT = 4


def test_sigterm_lets_in_flight_orders_finish(topology, tokens, orders_db, kafka_bootstrap):
    settings = topology.settings
    part = service_part(settings, f"shutdown-order-{uuid.uuid4().hex[:6]}", "order_svc", free_port(),
                        {"ORDER_INSTANCE": "shutdown-order"})
    part = dataclasses.replace(part, command=lambda: [sys.executable, "-m", held_order.__name__])
    supervisor = topology.supervisor
    log = supervisor.log_file(part)
    user_id = f"shutdown-{uuid.uuid4().hex[:8]}"
    outcomes = []
    try:
        pid = supervisor.start(part)
        supervisor.wait_healthy(part, pid, timeout=60)
        channel = tokens.channel(part.address)
        stub = order_service_pb2_grpc.OrderServiceStub(channel)

        def place():
            try:
                reply = stub.CreateOrder(order_service_pb2.CreateOrderRequest(
                    user_id=user_id, product_id="CATALOG-001", qty=2, request_id=str(uuid.uuid4())),
                    timeout=120)
                outcomes.append(reply.order.order_id)
            except grpc.RpcError as e:
                outcomes.append(e.code())

        callers = [threading.Thread(target=place) for _ in range(IN_FLIGHT)]
        for t in callers:
            t.start()
        # Every call is now inside CreateOrder, its publish held.
        wait_until(lambda: log.read_text().count(held_order.HELD) == IN_FLIGHT, timeout=60,
                   interval=0.1, what=f"{IN_FLIGHT} publishes held")
        # On failure, show the Order instance's own account of it.
        assert outcomes == [], f"no call may finish before the signal: {outcomes}\n{supervisor.log_tail(part)}"
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: "shutting down" in log.read_text(), timeout=30, what="the shutdown to begin")
        assert outcomes == [], "the calls must still be in flight when the shutdown begins"
        os.kill(pid, signal.SIGUSR1)  # the held publishes go on
        for t in callers:
            t.join(timeout=60)
        assert supervisor.wait_exit(part, timeout=60) == 0
        channel.close()
    finally:
        supervisor.stop(part, grace=5)

    text = log.read_text()
    assert (text.count(held_order.BY_SIGNAL), text.count(held_order.BY_BOUND)) == (IN_FLIGHT, 0), text
    assert len(outcomes) == IN_FLIGHT and all(isinstance(o, str) for o in outcomes), outcomes
    # Answered means acknowledged by Kafka: the events are on the topic (flushed before exit) ...
    keys = {m.key().decode() for m in read_topic(kafka_bootstrap, settings.orders_topic)}
    assert set(outcomes) <= keys
    # ... and every one of them reaches the shared table.
    rows = wait_for_user_rows(orders_db, settings.orders_table, user_id, IN_FLIGHT)
    assert {r.order_id for r in rows} == set(outcomes)
