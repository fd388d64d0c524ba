"""Visibility bench: how long after its acknowledgement each order is visible, in the table and in the stock.

N Python gRPC client threads place orders on two Order instances for a fixed time; a poller
records when each acknowledged order id first shows up in MariaDB (the row the sink connector
writes, what GetOrder/ListOrders read) and in the Catalog's applied_orders, and it prints the
per-order lags' p50/p99. Throughput, latency, CPU and the echo baseline are bench/load.py's job
(ghz); this one is kept for the per-order lag, which ghz cannot give (it does not see order ids).
Not run by `make bench`; it runs on a private stack of its own (stack.topology.Topology.private).
Usage:
    .venv/bin/python bench/e2e.py [--clients 8] [--seconds 20]
"""

import argparse
import threading
import time
import uuid

import sqlalchemy as sa

from catalog_svc import stock
from ordersync.config import private_key
from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from ordersync.serving import auth
from ordersync.serving.channels import Bearer, open_channel
from stack.topology import Topology

POLL_S = 0.05  # visibility is sampled this often, so lags carry up to this much error


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def load(call, clients: int, seconds: float):
    """Run `call(client_index)` from `clients` threads for `seconds`; returns per-call latencies."""
    latencies, lock = [], threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(i):
        mine = []
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            call(i)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


class Sightings(threading.Thread):
    """Records when each id first shows up in the result of `query`."""

    def __init__(self, engine, query, params):
        super().__init__(daemon=True)
        self.engine, self.query, self.params = engine, sa.text(query), params
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                with self.engine.connect() as conn:
                    ids = conn.execute(self.query, self.params).scalars().all()
            except sa.exc.ProgrammingError:
                ids = []
            now = time.time()
            for i in ids:
                self.seen.setdefault(i, now)
            self.stop.wait(POLL_S)


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--clients", type=int, default=8)
    args.add_argument("--seconds", type=float, default=20)
    opts = args.parse_args()

    topology = Topology.private(orders=2)
    settings = topology.settings
    table = settings.orders_table
    user_id = f"bench-{uuid.uuid4().hex[:8]}"
    orders = topology.orders
    try:
        topology.up()
        catalog_engine = stock.create_engine(settings.mariadb_url(settings.catalog_db))
        orders_engine = sa.create_engine(settings.mariadb_url(settings.orders_db))
        with catalog_engine.begin() as conn:  # stock that cannot run out during the run
            conn.execute(stock.products.update().values(stock=1_000_000_000))
        token = Bearer.fixed(auth.mint(private_key(settings.auth_private_key), user_id, auth.USER, 3600))
        stubs = [order_service_pb2_grpc.OrderServiceStub(open_channel(s.address, token, tls=settings.grpc_tls))
                 for s in orders]
        acked: dict[str, float] = {}
        in_table = Sightings(orders_engine, f"SELECT order_id FROM {table}", {})
        applied = Sightings(catalog_engine, "SELECT order_id FROM applied_orders", {})
        in_table.start()
        applied.start()

        def place(i):
            reply = stubs[i % 2].CreateOrder(order_service_pb2.CreateOrderRequest(
                user_id=user_id, product_id="CATALOG-00%d" % (1 + i % 3), qty=1,
                request_id=str(uuid.uuid4())), timeout=30)
            acked[reply.order.order_id] = time.time()

        print(f"placing orders: {opts.clients} clients x {opts.seconds:.0f}s on {len(orders)} Order instances ...",
              flush=True)
        latencies = load(place, opts.clients, opts.seconds)
        deadline = time.monotonic() + 120
        while not all(o in in_table.seen and o in applied.seen for o in acked) and time.monotonic() < deadline:
            time.sleep(0.5)
        in_table.stop.set()
        applied.stop.set()

    finally:
        topology.destroy()

    table_lag = [in_table.seen[o] - t for o, t in acked.items() if o in in_table.seen]
    stock_lag = [applied.seen[o] - t for o, t in acked.items() if o in applied.seen]
    rate = len(latencies) / opts.seconds
    ms = 1000
    print()
    print(f"orders acknowledged      {len(latencies)} in {opts.seconds:.0f}s = {rate:.0f} orders/s")
    print(f"CreateOrder latency      p50 {percentile(latencies, 50) * ms:.1f} ms   p99 {percentile(latencies, 99) * ms:.1f} ms")
    print(f"ack -> row in MariaDB    p50 {percentile(table_lag, 50) * ms:.0f} ms   p99 {percentile(table_lag, 99) * ms:.0f} ms"
          f"   ({len(table_lag)}/{len(acked)} seen; sampled every {POLL_S * ms:.0f} ms)")
    print(f"ack -> stock applied     p50 {percentile(stock_lag, 50) * ms:.0f} ms   p99 {percentile(stock_lag, 99) * ms:.0f} ms"
          f"   ({len(stock_lag)}/{len(acked)} seen)")


if __name__ == "__main__":
    main()
