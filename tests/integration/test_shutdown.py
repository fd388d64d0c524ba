"""SIGTERM stops the Order service cleanly: calls in flight finish and are published, the process exits 0.

To have calls certainly in flight when the signal arrives, the extra Order instance asks a
Catalog stand-in in this test process that holds every GetProduct until released.
"""

import os
import signal
import subprocess
import sys
import threading
import uuid
from concurrent import futures

import grpc

from demo.services import ROOT, Service, healthy
from ordersync.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from tests.integration.conftest import _free_port, wait_for_user_rows, wait_until

IN_FLIGHT = 4


class HeldCatalog(catalog_service_pb2_grpc.CatalogServiceServicer):
    def __init__(self):
        self.arrived = threading.Semaphore(0)
        self.release = threading.Event()

    def GetProduct(self, request, context):
        self.arrived.release()
        self.release.wait(10)
        return catalog_service_pb2.GetProductResponse(product=catalog_service_pb2.Product(
            product_id=request.product_id, product_name="Held", stock=1000, unit_price=700))


def test_sigterm_lets_in_flight_orders_finish(services, orders_db, tmp_path):
    catalog = HeldCatalog()
    catalog_server = grpc.server(futures.ThreadPoolExecutor(max_workers=IN_FLIGHT + 2))
    catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(catalog, catalog_server)
    catalog_port = catalog_server.add_insecure_port("127.0.0.1:0")
    catalog_server.start()

    svc = Service("shutdown-order", "order_svc", _free_port())
    env = {**os.environ, **services.orders[0].env, "ORDER_PORT": str(svc.port), "ORDER_INSTANCE": svc.name,
           "CATALOG_ADDRESS": f"127.0.0.1:{catalog_port}", "CATALOG_DEADLINE_S": "15"}
    log_path = tmp_path / "order.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "order_svc"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    user_id = f"shutdown-{uuid.uuid4().hex[:8]}"
    outcomes = []
    try:
        wait_until(lambda: healthy(svc), timeout=30, what="the extra Order instance to serve")
        channel = grpc.insecure_channel(svc.address)
        stub = order_service_pb2_grpc.OrderServiceStub(channel)

        def place():
            try:
                reply = stub.CreateOrder(order_service_pb2.CreateOrderRequest(
                    user_id=user_id, product_id="CATALOG-001", qty=2, request_id=str(uuid.uuid4())), timeout=30)
                outcomes.append(reply.order.order_id)
            except grpc.RpcError as e:
                outcomes.append(e.code())

        callers = [threading.Thread(target=place) for _ in range(IN_FLIGHT)]
        for t in callers:
            t.start()
        for _ in range(IN_FLIGHT):  # every call is now inside CreateOrder, waiting on the catalog
            assert catalog.arrived.acquire(timeout=10)
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "shutting down" in log_path.read_text(), timeout=10, what="the shutdown to begin")
        catalog.release.set()
        for t in callers:
            t.join(timeout=30)
        assert proc.wait(timeout=20) == 0
        channel.close()
    finally:
        catalog.release.set()
        if proc.poll() is None:
            proc.kill()
        catalog_server.stop(0)

    log = log_path.read_text()
    assert "stopped" in log, log
    assert len(outcomes) == IN_FLIGHT and all(isinstance(o, str) for o in outcomes), outcomes
    # Answered means acknowledged by Kafka: every one of them reaches the shared table.
    rows = wait_for_user_rows(orders_db, services.orders_table, user_id, IN_FLIGHT)
    assert {r.order_id for r in rows} == set(outcomes)

