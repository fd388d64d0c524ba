"""One part of CreateOrder done two or three ways, measured in paired runs on one stack.

    .venv/bin/python bench/paired_orders.py idempotency|linger|tracing [--concurrency 32] [--seconds 20] [--rounds 3]
                                            [--warmup 5]

Each comparison is Order instances of the same code and environment that differ in one thing: the
stack's own 2 (the way the service runs) and 2 more per other way (bench/order_variant.py and its
flags). The runs alternate (bench/variants.py): the concurrency split over one way's 2 instances,
as bench/load.py loads them, each round starting with another. Per run: orders/s, p50/p99, and the
CPU per order of that way's Order processes, of the broker and of MariaDB (only one way is loaded
at a time, so theirs is that way's too); then each way's mean as a ratio to the comparison's base.

- `idempotency`: every CreateOrder asks the orders table whether its order id is there (a retry on
  another instance gets the order placed first). `together` coalesces the reads of concurrent calls
  into one query (order_svc/read_together.py); `one-by-one` (the base) sends a query per call.
- `linger`: how long the Order's producer waits to fill a batch (linger.ms). `linger-1` (the
  stack's: bus/producer.py) waits up to 1 ms: fewer, fuller produce requests for the broker, and
  that much more latency per call; `linger-0` (the base, before) sends at once; `linger-3` waits 3 ms.
- `tracing`: what one trace per order costs. `traced` keeps every trace its orders start (the
  stack's default, TRACE_SAMPLE_RATIO 1); `unsampled` starts them and keeps none (ratio 0: the
  context still travels, every span is a no-op); `off` (the base) has no tracing (TRACING=OFF). The
  stack's gate and Catalog keep only what comes sampled (their own ratio 0), so the traced way's spans
  there and Zipkin's work count for it alone: their CPU per order is recorded too.
"""

import argparse
import sys
import time

import load
import measure
import variants

from stack.topology import Topology

# Before the first run, the stack's instances are loaded until the JVMs' JIT compilers go quiet
# (bench/load.py): in their first minutes they take a fifth of a core or more, and would weigh on
# whichever way runs first.
JIT_SETTLE_S = 120
USER = "bench-paired"
COMPARISONS = {
    "idempotency": ("one-by-one", {"together": None, "one-by-one": ["--read-one-by-one"]}),
    "linger": ("linger-0", {"linger-1": None, "linger-0": ["--linger-ms", "0"], "linger-3": ["--linger-ms", "3"]}),
    "tracing": ("off", {"traced": ["--trace-ratio", "1"], "unsampled": ["--trace-ratio", "0"],
                        "off": ["--no-tracing"]}),
}
# What a comparison changes in the whole stack, and the processes besides the broker and MariaDB
# whose CPU per order it records.
STACK = {"tracing": {"trace_sample_ratio": 0.0}}
ALSO = {"tracing": ("gate-1", "catalog-1", "zipkin")}


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("comparison", choices=sorted(COMPARISONS))
    args.add_argument("--concurrency", type=int, default=32)
    args.add_argument("--seconds", type=float, default=20.0)
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--warmup", type=float, default=5.0)
    opts = args.parse_args()
    if not measure.GHZ.exists():
        print(f"{measure.GHZ} is missing: run `make setup`", file=sys.stderr)
        return 2
    base, ways = COMPARISONS[opts.comparison]
    results: dict = {"bench": f"paired_orders {opts.comparison}", "started": time.strftime("%Y%m%d-%H%M%S"),
                     "machine": measure.machine(), "arguments": vars(opts)}
    topology = Topology.private(orders=2, **STACK.get(opts.comparison, {}))
    try:
        topology.up()
        parts = variants.start(topology, ways, instances=2)
        point = load.Point(topology, opts.comparison, sync_timeout=120)
        point.unlimited_stock()
        results["jit_settle"] = point.settle_jit(opts.concurrency, JIT_SETTLE_S)
        token = load.user_token(point.key, USER)
        shared = {name: topology.supervisor.pid(topology.part(name))
                  for name in ("kafka", "mariadb", *ALSO.get(opts.comparison, ()))}
        results["runs"] = variants.rounds(topology, parts, opts, USER, token, {name: "" for name in parts},
                                          also=shared)
        point.close()
        variants.stop(topology, ways, parts)
    finally:
        topology.destroy()
    results["summary"] = variants.summary(results["runs"], base, opts)
    print(f"wrote {measure.write_results(f'paired-{opts.comparison}', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
