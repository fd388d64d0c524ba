"""What CreateOrder's idempotency read costs, read together or one by one: paired runs on one stack.

    .venv/bin/python bench/idempotency_cost.py [--concurrency 32] [--seconds 20] [--rounds 3] [--warmup 5]

Every CreateOrder asks the orders table whether its order id is there (a retry on another instance
gets the order placed first). `together` is the stack's own 2 Order instances, which coalesce the
reads of concurrent calls into one query (order_svc/read_together.py); `one-by-one` is 2 more
instances of the same code and environment (bench/order_variant.py --read-one-by-one) that send a
query per call, as before. Both price from their own product view and publish to the same topic.
The runs alternate (bench/variants.py): the concurrency split over a variant's 2 instances, as
bench/load.py loads them. Per run: orders/s, p50/p99, the CPU per order of the variant's Order
processes, and MariaDB's; then each variant's mean as a ratio to `one-by-one`.
"""

import argparse
import sys
import time

import load
import measure
import variants

from ordersync.config import private_key
from stack.topology import Topology

USER = "bench-idempotency"
VARIANTS = {"together": None, "one-by-one": ["--read-one-by-one"]}


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--concurrency", type=int, default=32)
    args.add_argument("--seconds", type=float, default=20.0)
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--warmup", type=float, default=5.0)
    opts = args.parse_args()
    if not measure.GHZ.exists():
        print(f"{measure.GHZ} is missing: run `make setup`", file=sys.stderr)
        return 2
    results: dict = {"bench": "idempotency_cost", "started": time.strftime("%Y%m%d-%H%M%S"),
                     "machine": measure.machine(), "arguments": vars(opts)}
    topology = Topology.private(orders=2)
    try:
        topology.up()
        parts = variants.start(topology, VARIANTS, instances=2)
        point = load.Point(topology, "idempotency", sync_timeout=120)
        point.unlimited_stock()
        token = load.user_token(private_key(topology.settings.auth_private_key), USER)
        mariadb = {"mariadb": topology.supervisor.pid(topology.part("mariadb"))}
        results["runs"] = variants.rounds(topology, parts, opts, USER, token, {name: "" for name in parts},
                                          also=mariadb)
        point.close()
        variants.stop(topology, VARIANTS, parts)
    finally:
        topology.destroy()
    results["summary"] = variants.summary(results["runs"], "one-by-one", opts)
    print(f"wrote {measure.write_results('idempotency-cost', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
