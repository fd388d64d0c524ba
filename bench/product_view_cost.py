"""What the product view changed, measured on one private stack:

1. A price changed in catalog_db.products -> the first order at the new price, on each of two
   Order instances, p50/p99 over `--changes` changes, with the Catalog process stopped for the
   whole run (the views follow catalog.products; nothing asks the Catalog).
2. CreateOrder before and after: ghz against an Order instance of the code before the view
   (`--before REF`: it asked the Catalog over gRPC, with a product cache fresh for 1 s) and one of
   this code (its view), in turn, with the Catalog running; orders/s, p50/p99 and the CPU per order
   of that Order process; then "view" as a ratio to "before".

    .venv/bin/python bench/product_view_cost.py [--changes 100] [--concurrency 8 32] [--seconds 20]
                                                [--rounds 2] [--warmup 5] [--before c17770f]

The code before runs from `git archive REF` in a temporary folder, with the stubs of gen/ (the
protos did not change) and the same venv; it gets the token it needs for the Catalog, signed with
the stack's key, in its own ORDER_TOKEN_FILE.
"""

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc
import load
import measure
import sqlalchemy as sa

from ordersync.config import ROOT, private_key
from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
from ordersync.serving import auth
from ordersync.serving.channels import Bearer, open_channel
from stack.topology import Topology, free_port, service_part

USER = "bench-view"
PRODUCT = "BENCH-VIEW-PRICE"


def price_to_first_order(topology: Topology, changes: int) -> dict:
    """Seconds from each committed UPDATE of the price to the first order at that price, per
    Order instance; the Catalog process stopped meanwhile."""
    settings = topology.settings
    engine = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO products (product_id, product_name, stock, unit_price) VALUES "
                             "(:p, :p, 1000000000, 1) ON DUPLICATE KEY UPDATE unit_price = 1"), {"p": PRODUCT})
    bearer = Bearer.fixed(load.user_token(private_key(settings.auth_private_key), USER))
    channels = [open_channel(part.address, bearer) for part in topology.orders]
    stubs = [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
    seconds: dict[str, list[float]] = {part.name: [] for part in topology.orders}
    catalog = topology.catalogs[0]
    topology.supervisor.stop(catalog, grace=20)
    try:
        wait_priced(stubs, 1, time.monotonic() + 60)
        for i in range(changes):
            price = 1000 + i
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE products SET unit_price = :u WHERE product_id = :p"),
                             {"u": price, "p": PRODUCT})
            changed = time.monotonic()
            for part, at in zip(topology.orders, wait_priced(stubs, price, changed + 60)):
                seconds[part.name].append(at - changed)
            time.sleep(0.2)  # a change is not always right after the last one's arrival
    finally:
        topology.supervisor.ensure_up(catalog, timeout=60)
        for channel in channels:
            channel.close()
        engine.dispose()
    both = [max(pair) for pair in zip(*seconds.values())]
    return {name: summary(values) for name, values in {**seconds, "both": both}.items()}


def wait_priced(stubs, price: int, deadline: float) -> list[float]:
    """When (time.monotonic()) each stub's first order at `price` was answered, ordering again
    and again on every stub at once until each has one."""
    arrived: list[float | None] = [None] * len(stubs)

    def follow(i: int, stub) -> None:
        while time.monotonic() < deadline:
            request = order_service_pb2.CreateOrderRequest(user_id=USER, product_id=PRODUCT, qty=1,
                                                           request_id=str(uuid.uuid4()))
            try:
                reply = stub.CreateOrder(request, timeout=10)
            except grpc.RpcError:
                time.sleep(0.05)
                continue
            if reply.order.unit_price == price:
                arrived[i] = time.monotonic()
                return
            time.sleep(0.01)
    threads = [threading.Thread(target=follow, args=(i, s)) for i, s in enumerate(stubs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if None in arrived:
        raise TimeoutError(f"price {price} not in every Order instance's orders within 60 s")
    return [at for at in arrived if at is not None]


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(ordered), "p50_s": load.percentile(ordered, 50), "p99_s": load.percentile(ordered, 99),
            "max_s": ordered[-1], "mean_s": statistics.fmean(ordered)}


def before_part(topology: Topology, ref: str, tree: Path):
    """An Order instance of the code at `ref`, unpacked into `tree`, on a port of its own."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    settings = topology.settings
    token_file = tree / "order.token"  # what that code's stack wrote at each start: a service token for the Catalog
    token_file.write_text(auth.mint(private_key(settings.auth_private_key), "order", auth.SERVICE, 24 * 3600) + "\n")
    part = service_part(settings, "order-before", "order_svc", free_port(),
                        {"ORDER_INSTANCE": "order-before", "METRICS_PORT": str(free_port()),
                         "ORDER_TOKEN_FILE": str(token_file),
                         "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT / "gen")])})
    # -P: no current folder first on sys.path, so `-m order_svc` is the unpacked one.
    return dataclasses.replace(part, command=lambda: [sys.executable, "-P", "-m", "order_svc"], cwd=tree)


def before_and_after(topology: Topology, before, opts) -> list[dict]:
    settings = topology.settings
    parts = {"before": before, "view": topology.orders[0]}
    point = load.Point(topology, "view-cost", sync_timeout=120)
    point.unlimited_stock()
    token = load.user_token(private_key(settings.auth_private_key), USER)
    runs = []
    try:
        for name, part in parts.items():
            print(f"warm-up {name}: {opts.warmup:g}s", flush=True)
            load.run_ghz([(part.address, max(opts.concurrency))], opts.warmup, USER, token)
        for concurrency in opts.concurrency:
            for round_ in range(opts.rounds):
                names = list(parts) if round_ % 2 == 0 else list(parts)[::-1]  # neither always goes first
                for name in names:
                    cpu = measure.CpuMeter({name: topology.supervisor.pid(parts[name])})
                    started = cpu.snapshot()
                    result = load.run_ghz([(parts[name].address, concurrency)], opts.seconds, USER, token)
                    used = cpu.since(started)[name]
                    run = {"concurrency": concurrency, "round": round_ + 1, "variant": name, "per_s": result["per_s"],
                           "ok": result["ok"], "errors": result["errors"], "p50_ms": result["p50_ms"],
                           "p99_ms": result["p99_ms"],
                           "order_cpu_ms_per_order": 1000 * used / result["ok"] if result["ok"] else None}
                    runs.append(run)
                    print(f"c={concurrency} round {run['round']} {name:6}: {run['per_s']:7.1f} orders/s, "
                          f"p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, Order CPU "
                          f"{run['order_cpu_ms_per_order']:.2f} ms/order, errors {run['errors']}", flush=True)
    finally:
        point.close()
    return runs


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--changes", type=int, default=100)
    args.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    args.add_argument("--seconds", type=float, default=20.0)
    args.add_argument("--rounds", type=int, default=2)
    args.add_argument("--warmup", type=float, default=5.0)
    args.add_argument("--before", default="c17770f", help="the commit of the code before the view")
    args.add_argument("--latency-only", action="store_true", help="only 1., the price change to the first order")
    opts = args.parse_args()
    if not measure.GHZ.exists():
        print(f"{measure.GHZ} is missing: run `make setup`", file=sys.stderr)
        return 2
    results: dict = {"bench": "product_view_cost", "started": time.strftime("%Y%m%d-%H%M%S"),
                     "machine": measure.machine(), "arguments": vars(opts)}
    topology = Topology.private(orders=2, catalogs=1)
    try:
        topology.up()
        print(f"price change -> first order at the new price, {opts.changes} changes, the Catalog stopped:", flush=True)
        results["price_to_order"] = latency = price_to_first_order(topology, opts.changes)
        for name, s in latency.items():
            print(f"  {name:8} p50 {1000 * s['p50_s']:6.0f} ms, p99 {1000 * s['p99_s']:6.0f} ms, "
                  f"max {1000 * s['max_s']:6.0f} ms (n={s['n']})", flush=True)
        runs: list[dict] = []
        if not opts.latency_only:
            with tempfile.TemporaryDirectory(prefix="order-before-") as tree:
                before = before_part(topology, opts.before, Path(tree))
                topology.supervisor.ensure_up(before, timeout=90)
                try:
                    results["runs"] = runs = before_and_after(topology, before, opts)
                finally:
                    topology.supervisor.stop(before, grace=20)
    finally:
        topology.destroy()
    if runs:
        print(f"\nmean of {opts.rounds} rounds, {opts.seconds:g}s each (view as a ratio to before):")
    results["summary"] = {}
    for concurrency in opts.concurrency if runs else ():
        mean = {name: {key: statistics.fmean(r[key] for r in runs if r["variant"] == name
                                             and r["concurrency"] == concurrency)
                       for key in ("per_s", "p50_ms", "p99_ms", "order_cpu_ms_per_order")}
                for name in ("before", "view")}
        results["summary"][concurrency] = mean
        for name, m in mean.items():
            print(f"  c={concurrency:<3} {name:6} {m['per_s']:7.1f} orders/s "
                  f"({m['per_s'] / mean['before']['per_s']:.3f}), p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms "
                  f"({m['p99_ms'] / mean['before']['p99_ms']:.3f}), Order CPU {m['order_cpu_ms_per_order']:.2f} ms/order "
                  f"({m['order_cpu_ms_per_order'] / mean['before']['order_cpu_ms_per_order']:.3f})")
    print(f"wrote {measure.write_results('product-view-cost', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
