"""A load of orders: client threads placing 1-unit orders on the Order instances until stopped."""

import threading
import time
import uuid

import grpc

from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from ordersync.serving.channels import Bearer, open_channel
from stack.topology import Topology
from tests.support.tokens import Tokens


class OrderLoad:
    """Client threads placing 1-unit orders round-robin on the Order instances of `topology` until
    stopped, with a token of their user.

    `acked` holds the order ids that CreateOrder acknowledged; anything else is counted by code."""

    def __init__(self, topology: Topology, product_id: str, clients: int = 4, user_id: str | None = None):
        self.addresses = [o.address for o in topology.orders]
        self.product_id, self.clients = product_id, clients
        self.user_id = user_id or f"load-{uuid.uuid4().hex[:8]}"
        self._token = Tokens(topology.settings).user(self.user_id)
        self._tls = topology.settings.grpc_tls
        self.acked: list[str] = []
        self.acked_at: list[float] = []  # time.monotonic() of each acknowledgement
        self.refused: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def longest_pause(self, start: float, end: float) -> float:
        """The longest time between start and end (time.monotonic()) in which no order was acknowledged."""
        with self._lock:
            times = sorted(t for t in self.acked_at if start < t < end)
        edges = [start, *times, end]
        return max(b - a for a, b in zip(edges, edges[1:]))

    def _run(self, index: int):
        channels = [open_channel(a, Bearer.fixed(self._token), tls=self._tls) for a in self.addresses]
        stubs = [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
        n = index
        while not self._stop.is_set():
            stub = stubs[n % len(stubs)]
            n += 1
            try:
                reply = stub.CreateOrder(order_service_pb2.CreateOrderRequest(
                    user_id=self.user_id, product_id=self.product_id, qty=1,
                    request_id=str(uuid.uuid4())), timeout=5)
            except grpc.RpcError as e:
                with self._lock:
                    self.refused[e.code().name] = self.refused.get(e.code().name, 0) + 1
                self._stop.wait(0.2)
                continue
            with self._lock:
                self.acked.append(reply.order.order_id)
                self.acked_at.append(time.monotonic())
        for c in channels:
            c.close()
