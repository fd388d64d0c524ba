"""Paired, interleaved runs of Order instance variants on one private stack: what front_door_cost.py
and paired_orders.py share.

A variant is Order instances of bench/order_variant.py started with its flags (None: the stack's own
Order instances). Each run loads every instance of one variant at once with ghz (load.run_ghz: the
concurrency split between them, one user's token, a new request_id per call); each round starts
one variant later (A B C, B C A, C A B), so that a drift of the machine, and the pipeline still
working off the run before, weigh on each alike. Per run: orders/s, p50/p99, and the CPU seconds per
order of that variant's Order processes; then each variant's mean as a ratio to the baseline.
"""

import dataclasses
import sys

import load
import measure

from ordersync.config import ROOT
from stack.topology import free_port, grpc_serving, service_part


def variant_part(settings, name: str, flags: list[str]):
    """An Order instance of bench/order_variant.py with `flags`, on a port of its own."""
    part = service_part(settings, f"order-{name.replace('+', '-')}", "order_svc", free_port(),
                        {"ORDER_INSTANCE": f"order-{name}", "METRICS_PORT": str(free_port())})
    healthy = (lambda: grpc_serving(part.address)) if "--plaintext" in flags else part.healthy
    return dataclasses.replace(part, healthy=healthy,
                               command=lambda: [sys.executable, str(ROOT / "bench" / "order_variant.py"), *flags])


def start(topology, variants: dict[str, list[str] | None], instances: int) -> dict[str, list]:
    """{variant: its Order instances (parts)}: the stack's own for None, else `instances` new ones."""
    parts = {}
    for name, flags in variants.items():
        if flags is None:
            parts[name] = topology.orders[:instances]
            continue
        parts[name] = [variant_part(topology.settings, f"{name}-{i + 1}" if instances > 1 else name, flags)
                       for i in range(instances)]
        for part in parts[name]:
            topology.supervisor.ensure_up(part, timeout=60)
    return parts


def stop(topology, variants: dict[str, list[str] | None], parts: dict[str, list]) -> None:
    for name, flags in variants.items():
        if flags is not None:
            for part in parts[name]:
                topology.supervisor.stop(part, grace=20)


def targets(parts: list, concurrency: int) -> list[tuple[str, int]]:
    """The concurrency split over the instances (the first ones get the remainder; one call in
    flight is one call, on the first instance)."""
    share, extra = divmod(concurrency, len(parts))
    split = [(p.address, share + (1 if i < extra else 0)) for i, p in enumerate(parts)]
    return [(address, c) for address, c in split if c > 0]


def rounds(topology, parts: dict[str, list], opts, user: str, token: str, ca: dict[str, str],
           also: dict[str, int] | None = None) -> list[dict]:
    """opts.rounds rounds of one run per variant (opts.concurrency, opts.seconds), after a warm-up each;
    `also` ({name: pid}): processes shared by the variants whose CPU per order each run records too."""
    for name, instances in parts.items():
        print(f"warm-up {name}: {opts.warmup:g}s", flush=True)
        load.run_ghz(targets(instances, opts.concurrency), opts.warmup, user, token, ca[name])
    names, runs = list(parts), []
    for round_ in range(opts.rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            orders = measure.CpuMeter({p.name: topology.supervisor.pid(p) for p in parts[name]})
            shared = measure.CpuMeter(also or {})
            before, shared_before = orders.snapshot(), shared.snapshot()
            result = load.run_ghz(targets(parts[name], opts.concurrency), opts.seconds, user, token, ca[name])
            used, shared_used = sum(orders.since(before).values()), shared.since(shared_before)
            ok = result["ok"] or None
            run = {"round": round_ + 1, "variant": name, "per_s": result["per_s"], "ok": result["ok"],
                   "errors": result["errors"], "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
                   "order_cpu_ms_per_order": ok and 1000 * used / ok,
                   **{f"{other}_cpu_ms_per_order": ok and 1000 * cpu / ok for other, cpu in shared_used.items()}}
            runs.append(run)
            others = "".join(f", {other} {run[f'{other}_cpu_ms_per_order']:.2f}" for other in shared_used)
            print(f"round {run['round']} {name:10}: {run['per_s']:7.1f} orders/s, p50 {run['p50_ms']:.1f} ms, "
                  f"p99 {run['p99_ms']:.1f} ms, CPU ms/order: Order {run['order_cpu_ms_per_order']:.2f}{others}, "
                  f"errors {run['errors']}", flush=True)
    return runs


def summary(runs: list[dict], base: str, opts) -> dict[str, dict]:
    """Each variant's mean over its runs, printed with its ratio to `base`'s."""
    means = {}
    for name in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == name]
        keys = [k for k in mine[0] if k in ("per_s", "p50_ms", "p99_ms") or k.endswith("_cpu_ms_per_order")]
        means[name] = {key: sum(r[key] for r in mine) / len(mine) for key in keys}
    b = means[base]
    print(f"\nmean of {opts.rounds} rounds at c={opts.concurrency}, {opts.seconds:g}s each (ratio to {base}):")
    for name, mean in means.items():
        cpu = ", ".join(f"{k.removesuffix('_cpu_ms_per_order')} {v:.2f} ms/order ({v / b[k]:.3f})"
                        for k, v in mean.items() if k.endswith("_cpu_ms_per_order"))
        print(f"  {name:10} {mean['per_s']:7.1f} orders/s ({mean['per_s'] / b['per_s']:.3f}), "
              f"p50 {mean['p50_ms']:.1f} ms, p99 {mean['p99_ms']:.1f} ms ({mean['p99_ms'] / b['p99_ms']:.3f}), "
              f"CPU: {cpu}")
    return means
