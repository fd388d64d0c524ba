"""Does CreateOrder's throughput fall over time? ghz at one concurrency over 2 Order instances
for `--minutes` minutes on one private stack, as one-minute runs back to back (a pause of a few
milliseconds between them); each minute's orders/s and p99, and the last minute as a ratio to the
first and to the best (the goal: the last >= 0.9x the best; the first minute still warms up).
Each minute also records every process's CPU per order, InnoDB's buffer-pool misses per order and
the orders in the table, to tell a machine that slows from a stack that does.

    .venv/bin/python bench/stability.py [--minutes 5] [--concurrency 32] [--warmup 10]

Writes bench/results/stability-<time>.json, which bench/goals.py reads.
"""

import argparse
import sys
import time

import load
import measure
import sqlalchemy as sa

from stack.topology import Topology

USER = "bench-stability"


def orders_in_table(point) -> int:
    """InnoDB's estimate of the orders table's rows (a COUNT(*) would scan it every minute)."""
    with point.orders_db.connect() as conn:
        return int(conn.execute(sa.text("SELECT table_rows FROM information_schema.tables WHERE table_schema = "
                                        "DATABASE() AND table_name = :t"), {"t": point.settings.orders_table}).scalar())


def pool_misses(point) -> int:
    with point.orders_db.connect() as conn:
        return measure.buffer_pool_misses(conn)


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--minutes", type=int, default=5)
    args.add_argument("--concurrency", type=int, default=32)
    args.add_argument("--warmup", type=float, default=10.0)
    opts = args.parse_args()
    if not measure.GHZ.exists():
        print(f"{measure.GHZ} is missing: run `make setup`", file=sys.stderr)
        return 2
    results: dict = {"bench": "stability", "started": time.strftime("%Y%m%d-%H%M%S"), "machine": measure.machine(),
                     "arguments": vars(opts), "minutes": []}
    topology = Topology.private(orders=2)
    try:
        topology.up()
        point = load.Point(topology, "stability", sync_timeout=300)
        point.unlimited_stock()
        token = load.user_token(point.key, USER)
        targets = load.split(opts.concurrency, [part.address for part in topology.orders])
        print(f"warm-up {opts.warmup:g}s", flush=True)
        load.run_ghz(targets, opts.warmup, USER, token)
        cpu = measure.CpuMeter(measure.stack_pids(topology))
        for minute in range(1, opts.minutes + 1):
            before, misses_before = cpu.snapshot(), pool_misses(point)
            result = load.run_ghz(targets, 60, USER, token)
            per_order = measure.per_unit(cpu.since(before), result["ok"])
            misses = (pool_misses(point) - misses_before) / max(result["ok"], 1)
            results["minutes"].append({**{key: result[key] for key in ("ok", "errors", "per_s", "p50_ms", "p99_ms")},
                                       "cpu_s_per_order": per_order, "pool_misses_per_order": misses,
                                       "orders_in_table": orders_in_table(point)})
            print(f"minute {minute}: {result['per_s']:7.1f} orders/s, p50 {result['p50_ms']:.1f} ms, "
                  f"p99 {result['p99_ms']:.1f} ms, errors {result['errors']}; CPU ms per order: "
                  + ", ".join(f"{name} {1000 * v:.2f}" for name, v in sorted(per_order.items(), key=lambda kv: -(kv[1] or 0))
                              if name != "total" and v and v >= 0.000005)
                  + f"; InnoDB buffer-pool misses per order {misses:.2f}, "
                  f"about {results['minutes'][-1]['orders_in_table']:,} orders in the table", flush=True)
        point.close()
    finally:
        topology.destroy()
    rates = [m["per_s"] for m in results["minutes"]]
    results["last_to_first"], results["last_to_best"] = rates[-1] / rates[0], rates[-1] / max(rates)
    print(f"last minute / first: {results['last_to_first']:.3f}; / the best: {results['last_to_best']:.3f} "
          "(goal >= 0.9)")
    print(f"wrote {measure.write_results('stability', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
