"""The Order service with one part done otherwise, for the paired benches only (never started by
the stack). For bench/front_door_cost.py: `--plaintext` serves its own port without TLS, `--unchecked USER` takes every call
as USER with no token parsed or verified (the interceptor, the caller's identity and the
authorization rules are as always); for bench/paired_orders.py, `--read-one-by-one` makes each
CreateOrder's idempotency read a query of its own (order_svc/read_together.py coalesces them); for
bench/paired_orders.py, `--linger-ms N` sets the producer's linger.ms (bus/producer.py: 0); for
bench/paired_orders.py tracing, `--trace-ratio R` keeps that share of the traces it starts
(TRACE_SAMPLE_RATIO) and `--no-tracing` turns its tracing off (TRACING=OFF).

    .venv/bin/python bench/order_variant.py [--plaintext] [--unchecked USER] [--read-one-by-one] [--linger-ms N]
                                            [--trace-ratio R | --no-tracing]
    (in an Order instance's environment)
"""

import argparse
import os

from order_svc.server import serve
from ordersync.config import PLAINTEXT
from ordersync.serving import auth


class Unchecked(auth.Verifier):
    def __init__(self, user_id: str):
        self._identity = auth.Identity(user_id, auth.USER)

    def identify(self, metadata) -> auth.Identity:
        return self._identity


if __name__ == "__main__":
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--plaintext", action="store_true")
    args.add_argument("--unchecked", metavar="USER")
    args.add_argument("--read-one-by-one", action="store_true")
    args.add_argument("--linger-ms", type=float)
    args.add_argument("--trace-ratio")
    args.add_argument("--no-tracing", action="store_true")
    opts = args.parse_args()
    if opts.trace_ratio is not None:
        os.environ["TRACE_SAMPLE_RATIO"] = opts.trace_ratio  # read by serve() (order_svc.config)
    if opts.no_tracing:
        os.environ["TRACING"] = "OFF"
    serve(verifier=Unchecked(opts.unchecked) if opts.unchecked else None,
          server_tls=PLAINTEXT if opts.plaintext else None, read_together=not opts.read_one_by_one,
          producer_config=None if opts.linger_ms is None else {"linger.ms": opts.linger_ms})
