"""SIGTERM stops the Order service cleanly: calls in flight finish and are published, the process exits 0.

To have calls certainly in flight when the signal arrives, the extra Order instance asks a
Catalog stand-in in this test process that holds every GetProduct until the test has sent
the signal and seen the shutdown begin.
"""

import os
import signal
import threading
import uuid
from concurrent import futures

import grpc

from ordersync.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from stack.topology import free_port, service_part
from tests.support.kafka import read_topic
from tests.support.waiting import wait_for_user_rows, wait_until

IN_FLIGHT = 4


class HeldCatalog(catalog_service_pb2_grpc.CatalogServiceServicer):
    def __init__(self):
        self.arrived = threading.Semaphore(0)
        self.release = threading.Event()
        self.released_by_test = []

    def GetProduct(self, request, context):
        self.arrived.release()
        # Only the test releases the calls (after SIGTERM); the bound only keeps a broken test from hanging.
        self.released_by_test.append(self.release.wait(120))
        return catalog_service_pb2.GetProductResponse(product=catalog_service_pb2.Product(
            product_id=request.product_id, product_name="Held", stock=1000, unit_price=700))


def test_sigterm_lets_in_flight_orders_finish(topology, tokens, orders_db, kafka_bootstrap):
    catalog = HeldCatalog()
    catalog_server = grpc.server(futures.ThreadPoolExecutor(max_workers=IN_FLIGHT + 2))
    catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(catalog, catalog_server)
    catalog_port = catalog_server.add_insecure_port("127.0.0.1:0")
    catalog_server.start()

    settings = topology.settings
    part = service_part(settings, f"shutdown-order-{uuid.uuid4().hex[:6]}", "order_svc", free_port(),
                        {"CATALOG_PORT": str(catalog_port), "CATALOG_DEADLINE_S": "60",
                         "ORDER_INSTANCE": "shutdown-order"})
    supervisor = topology.supervisor
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
        for _ in range(IN_FLIGHT):  # every call is now inside CreateOrder, waiting on the catalog
            assert catalog.arrived.acquire(timeout=60)
        # On failure, show the Order instance's own account of it (a flake seen once: 2 of 4 calls
        # answered UNAVAILABLE before the signal; the cause is still open).
        assert outcomes == [], f"no call may finish before the signal: {outcomes}\n{supervisor.log_tail(part)}"
        os.kill(pid, signal.SIGTERM)
        log = supervisor.log_file(part)
        wait_until(lambda: "shutting down" in log.read_text(), timeout=30, what="the shutdown to begin")
        assert outcomes == [], "the calls must still be in flight when the shutdown begins"
        catalog.release.set()
        for t in callers:
            t.join(timeout=60)
        assert supervisor.wait_exit(part, timeout=60) == 0
        channel.close()
    finally:
        catalog.release.set()
        supervisor.stop(part, grace=5)
        catalog_server.stop(0)

    assert catalog.released_by_test == [True] * IN_FLIGHT
    assert len(outcomes) == IN_FLIGHT and all(isinstance(o, str) for o in outcomes), outcomes
    # Answered means acknowledged by Kafka: the events are on the topic (flushed before exit) ...
    keys = {m.key().decode() for m in read_topic(kafka_bootstrap, settings.orders_topic)}
    assert set(outcomes) <= keys
    # ... and every one of them reaches the shared table.
    rows = wait_for_user_rows(orders_db, settings.orders_table, user_id, IN_FLIGHT)
    assert {r.order_id for r in rows} == set(outcomes)
