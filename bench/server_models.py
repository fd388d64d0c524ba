"""grpcio's two server models on this machine: the thread pool (what the services use) against
grpc.aio, both as the bare echo server of bench/echo_server.py, loaded by ghz in turn.

    .venv/bin/python bench/server_models.py [--concurrency 1,8,32] [--seconds 20] [--warmup 5]

Prints calls/s, p50/p99 and the server's CPU per call for each model and concurrency, and the
ratio aio / thread pool. It measures the cost of the unary path alone: a service whose calls wait
on I/O (the broker's acknowledgement) would also need that I/O made awaitable to gain from aio.
"""

import argparse

from load import echo_baseline


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("--concurrency", default="1,8,32")
    args.add_argument("--seconds", type=float, default=20)
    args.add_argument("--warmup", type=float, default=5)
    opts = args.parse_args()
    concurrencies = [int(c) for c in opts.concurrency.split(",")]
    threads = echo_baseline(concurrencies, opts.seconds, opts.warmup)
    aio = echo_baseline(concurrencies, opts.seconds, opts.warmup, aio=True)
    print(f"{'c':>3}  {'model':<11} {'calls/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/call':>11}")
    for c in concurrencies:
        for name, r in (("thread pool", threads[c]), ("grpc.aio", aio[c])):
            cpu_ms = 1000 * (r["cpu_s_per_call"]["total"] or 0)
            print(f"{c:>3}  {name:<11} {r['per_s']:>8.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {cpu_ms:>11.3f}")
        print(f"{c:>3}  aio / pool  {aio[c]['per_s'] / threads[c]['per_s']:>8.2f}x")


if __name__ == "__main__":
    main()
