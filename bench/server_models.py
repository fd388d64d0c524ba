"""grpcio's two server models on this machine: the thread pool (what the services use) against
grpc.aio, both as the bare echo server of bench/echo_server.py, loaded by ghz in turn.

    .venv/bin/python bench/server_models.py [--concurrency 1,8,32] [--seconds 20] [--warmup 5]

Prints calls/s, p50/p99 and the server's CPU per call for each model and concurrency, and the
ratio aio / thread pool. It measures the cost of the unary path alone: a service whose calls wait
on I/O (the broker's acknowledgement) would also need that I/O made awaitable to gain from aio.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import grpc
import measure
from load import run_ghz

from stack.topology import free_port
from svc_runtime.settings import ROOT


def load_model(aio: bool, concurrencies: list[int], seconds: float, warmup: float) -> dict[int, dict]:
    port = free_port()
    address = f"127.0.0.1:{port}"
    command = [sys.executable, str(Path(__file__).with_name("echo_server.py")), str(port)] + (["--aio"] if aio else [])
    server = subprocess.Popen(command, cwd=ROOT)
    try:
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        cpu = measure.CpuMeter({"echo": server.pid})
        results = {}
        for concurrency in concurrencies:
            if warmup > 0:
                run_ghz([(address, concurrency)], warmup, "bench-warmup")
            before = cpu.snapshot()
            result = run_ghz([(address, concurrency)], seconds, "bench")
            result["cpu_ms_per_call"] = 1000 * (measure.per_unit(cpu.since(before), result["ok"])["total"] or 0)
            results[concurrency] = result
        return results
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("--concurrency", default="1,8,32")
    args.add_argument("--seconds", type=float, default=20)
    args.add_argument("--warmup", type=float, default=5)
    opts = args.parse_args()
    concurrencies = [int(c) for c in opts.concurrency.split(",")]
    threads = load_model(False, concurrencies, opts.seconds, opts.warmup)
    aio = load_model(True, concurrencies, opts.seconds, opts.warmup)
    print(f"{'c':>3}  {'model':<11} {'calls/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/call':>11}")
    for c in concurrencies:
        for name, r in (("thread pool", threads[c]), ("grpc.aio", aio[c])):
            print(f"{c:>3}  {name:<11} {r['per_s']:>8.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['cpu_ms_per_call']:>11.3f}")
        print(f"{c:>3}  aio / pool  {aio[c]['per_s'] / threads[c]['per_s']:>8.2f}x")


if __name__ == "__main__":
    main()
