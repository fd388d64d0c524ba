"""Drain bench: how fast the Catalog and the sink each work off a backlog of order events.

    .venv/bin/python bench/drain.py [--events 50000] [--chunk 5000]

On a private topology (no Order instance: the bench publishes the events itself) it stops the
Catalog, pauses the sink connector, publishes N valid OrderPlaced events with
bus.producer.EventProducer.publish_many in chunks, then:
  1. starts the Catalog alone and times until applied_orders has the N orders;
  2. resumes the sink alone and times until the table has the N rows.

Each side's rate is taken from the first applied order/row it wrote to the last, so that a
process start and a group join do not count: events/s, and CPU seconds per event (utime + stime
from /proc) of the processes doing the work: the Catalog and MariaDB, then Connect, its watchdog
and MariaDB; Kafka's (serving the fetches) beside them. Progress is polled every 0.1 s with
primary-key look-ups of the last event of each partition (a partition is worked off in order),
so the polling costs MariaDB next to nothing; COUNT(*) confirms the end.
Results: stdout and bench/results/drain-<timestamp>.json.
"""

import argparse
import json
import sys
import time
import uuid

import measure
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp

from bus.producer import EventProducer
from catalog_svc import stock
from connect import rest
from ordersync.order.v1 import order_event_pb2
from stack.topology import Topology

POLL_S = 0.1


def set_sink_state(settings, action: str, want: str, timeout: float = 60) -> None:
    """pause or resume the sink connector, and wait until it and its tasks say `want`."""
    name = rest.quote(settings.sink_name)
    status, body = rest.call(settings.connect_url, "PUT", f"/connectors/{name}/{action}")
    if status >= 300:
        raise RuntimeError(f"{action} {settings.sink_name}: HTTP {status} {body}")
    deadline = time.monotonic() + timeout
    while True:
        status, body = rest.call(settings.connect_url, "GET", f"/connectors/{name}/status")
        states = [body["connector"]["state"], *(t["state"] for t in body.get("tasks", []))] if status == 200 else []
        if states and all(s == want for s in states):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{settings.sink_name} not {want} after {timeout:.0f}s: {body}")
        time.sleep(0.2)


def events(count: int, user_id: str, products: list[dict]) -> list:
    now = Timestamp()
    now.GetCurrentTime()
    out = []
    for i in range(count):
        product = products[i % len(products)]
        out.append(order_event_pb2.OrderPlaced(
            order_id=str(uuid.uuid4()), user_id=user_id, product_id=product["product_id"], qty=1,
            unit_price=product["unit_price"], total_price=product["unit_price"], created_at=now))
    return out


def publish(settings, backlog: list, chunk: int) -> list[str]:
    """Publish the events, `chunk` per publish_many call; the order id of the last one of each partition."""
    last_by_partition: dict[int, tuple[int, str]] = {}
    with EventProducer(settings.orders_topic, "order_id", client=settings.kafka_client()) as producer:
        for start in range(0, len(backlog), chunk):
            part = backlog[start:start + chunk]
            for event, (partition, offset) in zip(part, producer.publish_many(part, timeout=300)):
                if offset > last_by_partition.get(partition, (-1, ""))[0]:
                    last_by_partition[partition] = (offset, event.order_id)
    return [order_id for _, order_id in last_by_partition.values()]


class Drain:
    """Times one side (the Catalog's applied_orders, or the sink's table) working off the backlog."""

    def __init__(self, engine: sa.Engine, table: str, last_ids: list[str], cpu: measure.CpuMeter):
        self.engine, self.table, self.last_ids, self.cpu = engine, table, last_ids, cpu

    def _present(self, ids: list[str]) -> int:
        sql = sa.text(f"SELECT COUNT(*) FROM {self.table} WHERE order_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True))
        with self.engine.connect() as conn:
            return int(conn.execute(sql, {"ids": ids}).scalar_one())

    def _any(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT 1 FROM {self.table} LIMIT 1")).first() is not None

    def count(self, where: str = "", params: dict | None = None) -> int:
        return measure.count_rows(self.engine, f"SELECT COUNT(*) FROM {self.table} {where}", params)

    def run(self, expected: int, where: str, params: dict, timeout: float) -> dict:
        """Wait for the first row, then for the last of each partition, then for COUNT(*) = expected."""
        began = time.monotonic()
        while not self._any():
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"nothing arrived in {self.table} within {timeout:.0f}s")
            time.sleep(POLL_S)
        first_at = time.monotonic()
        cpu_before = self.cpu.snapshot()
        count_at_first = self.count(where, params)
        while self._present(self.last_ids) < len(self.last_ids) or self.count(where, params) < expected:
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"{self.table}: {self.count(where, params)} of {expected} after {timeout:.0f}s")
            time.sleep(POLL_S)
        done_at = time.monotonic()
        cpu = self.cpu.since(cpu_before)
        worked = expected - count_at_first
        seconds = done_at - first_at
        return {"until_first_row_s": first_at - began, "draining_s": seconds, "events_drained": worked,
                "events_per_s": worked / seconds if seconds > 0 else None,
                "cpu_s": cpu, "cpu_s_per_event": measure.per_unit(cpu, worked)}


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--events", type=int, default=50_000, help="backlog size (50000)")
    args.add_argument("--chunk", type=int, default=5_000, help="events per publish_many call (5000)")
    args.add_argument("--timeout", type=float, default=900, help="longest wait for each side (900 s)")
    opts = args.parse_args()
    started = time.strftime("%Y%m%d-%H%M%S")
    results: dict = {"bench": "drain", "started": started, "machine": measure.machine(),
                     "arguments": vars(opts)}
    topology = Topology.private(orders=0)
    settings = topology.settings
    catalog = topology.catalogs[0]
    user_id = f"drain-{uuid.uuid4().hex[:8]}"
    try:
        topology.up()
        results["versions"] = measure.versions(settings)
        catalog_db = stock.create_engine(settings.mariadb_url(settings.catalog_db))
        orders_db = sa.create_engine(settings.mariadb_url(settings.orders_db), pool_pre_ping=True)
        with catalog_db.begin() as conn:
            conn.execute(sa.text("UPDATE products SET stock = 1000000000"))
        products = stock.list_products(catalog_db)

        topology.supervisor.stop(catalog, grace=20)
        set_sink_state(settings, "pause", "PAUSED")

        print(f"publishing {opts.events} events in chunks of {opts.chunk} ...", flush=True)
        backlog = events(opts.events, user_id, products)
        began = time.monotonic()
        last_ids = publish(settings, backlog, opts.chunk)
        published_s = time.monotonic() - began
        results["publish"] = {"seconds": published_s, "events_per_s": opts.events / published_s}
        infra_pids = measure.stack_pids(topology)

        print("the Catalog alone works off the backlog ...", flush=True)
        catalog_began = time.monotonic()
        topology.supervisor.ensure_up(catalog, 60)
        pids = {"catalog-1": topology.supervisor.pid(catalog), "mariadb": infra_pids["mariadb"], "kafka": infra_pids["kafka"]}
        side = Drain(catalog_db, "applied_orders", last_ids, measure.CpuMeter({k: v for k, v in pids.items() if v}))
        results["catalog"] = side.run(opts.events, "", {}, opts.timeout)
        results["catalog"]["from_start_s"] = time.monotonic() - catalog_began

        print("the sink alone works off the backlog ...", flush=True)
        sink_began = time.monotonic()
        set_sink_state(settings, "resume", "RUNNING")
        side = Drain(orders_db, settings.orders_table, last_ids, measure.CpuMeter(
            {name: infra_pids[name] for name in ("connect", "sink-watchdog", "mariadb", "kafka")}))
        results["sink"] = side.run(opts.events, "WHERE user_id = :user_id", {"user_id": user_id}, opts.timeout)
        results["sink"]["from_resume_s"] = time.monotonic() - sink_began
        catalog_db.dispose()
        orders_db.dispose()
    finally:
        topology.destroy()

    print()
    print(f"backlog: {opts.events} events, published at {results['publish']['events_per_s']:.0f} events/s")
    for side_name in ("catalog", "sink"):
        r = results[side_name]
        per = ", ".join(f"{name} {seconds * 1000:.3f}" for name, seconds in r["cpu_s_per_event"].items())
        print(f"{side_name:>8}: {r['events_per_s']:.0f} events/s ({r['events_drained']} in {r['draining_s']:.1f}s "
              f"after the first row, {r['until_first_row_s']:.1f}s to the first); CPU ms per event: {per}")
    measure.RESULTS.mkdir(parents=True, exist_ok=True)
    out = measure.RESULTS / f"drain-{started}.json"
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
