"""What the front door costs CreateOrder: ghz against Order instances with TLS and token checks,
with token checks only, and with neither, in turn, on one private stack.

    .venv/bin/python bench/front_door_cost.py [--concurrency 8] [--seconds 15] [--rounds 2] [--warmup 5]

The stack (stack.topology: its own MariaDB, Kafka, Connect with the sink, the gate, one Catalog)
runs with gRPC over TLS, as the cluster does (GRPC_TLS_CA: stack/tls.py signs its certificate).
Its Order instance is the first variant (`tls+token`: a TLS port, every token verified by
ordersync.serving.auth.RequireToken). The bench starts two more from the same code and
environment (bench/order_variant.py): `token` serves a plaintext port and checks tokens;
`neither` serves a plaintext port and takes every call as the bench's user without parsing its
token (the baseline: the front door before TLS and tokens). All three price from their own
product view. Each gets the same ghz load (bench/load.py's run_ghz: one user's
token in --metadata, a new request_id per call; --cacert for the TLS port), one after the other,
each round starting one variant later (A B C, B C A, C A B): a drift of the machine, and the
pipeline still working off the run before, weigh on each alike. Per run: orders/s, p50/p99 and the
CPU seconds per order of that Order process; then each variant's mean as a ratio to `neither`.

ghz keeps one connection and one token for the whole run, as a client would: the TLS handshake
is paid once per connection, and the checked instances verify the signature once and then find
the token among those verified (auth.Verifier). The first line says what one verification costs
on this machine, measured in this process.
"""

import argparse
import sys
import time
import timeit

import load
import measure
import variants
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ordersync.serving import auth
from stack.topology import Topology

# Before the first run, the stack's instances are loaded until the JVMs' JIT compilers go quiet
# (bench/load.py): in their first minutes they take a fifth of a core or more, and would weigh on
# whichever way runs first.
JIT_SETTLE_S = 120
USER = "bench-front-door"  # the unchecked instance names every caller so
VARIANTS = {"tls+token": None, "token": ["--plaintext"], "neither": ["--plaintext", "--unchecked", USER]}


def verification_cost() -> dict[str, float]:
    """Microseconds per call of a full check, and of a token found among those verified."""
    key = Ed25519PrivateKey.generate()
    token = auth.mint(key, USER, auth.USER, 600)
    verifier = auth.Verifier(key.public_key())
    full = timeit.timeit(lambda: auth.Verifier(key.public_key()).verify(token), number=2000) / 2000
    remembered = timeit.timeit(lambda: verifier.verify(token), number=20000) / 20000
    return {"full_us": full * 1e6, "remembered_us": remembered * 1e6}


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--concurrency", type=int, default=8)
    args.add_argument("--seconds", type=float, default=15.0)
    args.add_argument("--rounds", type=int, default=2)
    args.add_argument("--warmup", type=float, default=5.0)
    opts = args.parse_args()
    if not measure.GHZ.exists():
        print(f"{measure.GHZ} is missing: run `make setup`", file=sys.stderr)
        return 2
    results: dict = {"bench": "front_door_cost", "started": time.strftime("%Y%m%d-%H%M%S"), "machine": measure.machine(),
                     "arguments": vars(opts), "verification": verification_cost(), "runs": []}
    print(f"one verification: {results['verification']['full_us']:.0f} us; a remembered token: "
          f"{results['verification']['remembered_us']:.1f} us", flush=True)
    topology = Topology.private(orders=1, grpc_tls=True)
    try:
        topology.up()
        settings = topology.settings
        parts = variants.start(topology, VARIANTS, instances=1)
        point = load.Point(topology, "front-door", sync_timeout=120)
        point.unlimited_stock()
        results["jit_settle"] = point.settle_jit(opts.concurrency, JIT_SETTLE_S)
        token = load.user_token(point.key, USER)
        ca = {name: settings.grpc_tls_ca if name == "tls+token" else "" for name in parts}
        results["runs"] = variants.rounds(topology, parts, opts, USER, token, ca)
        point.close()
        variants.stop(topology, VARIANTS, parts)
    finally:
        topology.destroy()
    results["summary"] = variants.summary(results["runs"], "neither", opts)
    print(f"wrote {measure.write_results('front-door-cost', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
