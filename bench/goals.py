"""The throughput goals (issue "Throughput round 3"), checked against the newest results of each bench.

    .venv/bin/python bench/goals.py

Reads the newest bench/results/envelope-*.json, load-*.json, drain-*.json and stability-*.json (what `make bench`
has just written) and prints one table: each goal, its target, what was measured, met or not.
Ratios are to the bare grpcio echo of the same load run. A goal whose figure is missing (a bench
not run, or run without that point) is shown as such, never as met. Exits 0 either way.
"""

import json
import sys

import measure


def newest(kind: str) -> dict | None:
    files = sorted(measure.RESULTS.glob(f"{kind}-*.json"))
    return json.loads(files[-1].read_text()) | {"file": files[-1].name} if files else None


def point(load: dict | None, instances: int, concurrency: int) -> dict | None:
    for p in (load or {}).get("points", []):
        if (p["instances"], p["concurrency"]) == (instances, concurrency):
            return p
    return None


def per_process(p: dict) -> str:
    """CPU ms per order of each process of a point, the largest first."""
    per = {name: v for name, v in p["cpu_s_per_order"].items() if name != "total" and v}
    return ", ".join(f"{name} {1000 * v:.2f}" for name, v in sorted(per.items(), key=lambda kv: -kv[1]))


def rows(envelope: dict | None, load: dict | None, drain: dict | None,
         stability: dict | None = None) -> list[tuple[str, str, str, bool | None]]:
    """(goal, target, measured, met) per goal; met None when it could not be measured."""
    out: list[tuple[str, str, str, bool | None]] = []

    def add(goal, target, value, fmt, ok):
        out.append((goal, target, "not measured" if value is None else fmt(value),
                    None if value is None else ok(value)))

    echo = (load or {}).get("echo", {})
    for c, target in ((8, 0.45), (32, 0.40)):
        p = point(load, 2, c)
        ratio = p and p["ratio_to_echo"]
        add(f"CreateOrder, 2 Orders, c={c}", f">= {target}x echo", ratio,
            lambda r, p=p: f"{r:.3f}x ({p['per_s']:.0f}/s)", lambda r, t=target: r >= t)
    p, e = point(load, 2, 32), echo.get("32") or echo.get(32)
    p99_ratio = p and e and e.get("p99_ms") and p["p99_ms"] / e["p99_ms"]
    add("CreateOrder, 2 Orders, c=32, p99", "<= 3x the echo's p99", p99_ratio,
        lambda r, p=p, e=e: f"{r:.1f}x ({p['p99_ms']:.0f} ms; echo {e['p99_ms']:.0f} ms)", lambda r: r <= 3)
    for instances in sorted({p["instances"] for p in (load or {}).get("points", [])}) or [2]:
        series = [p["per_s"] for p in sorted((p for p in load["points"] if p["instances"] == instances),
                                             key=lambda p: p["concurrency"])] if load else []
        add(f"throughput never falls with concurrency, {instances} Order(s)", "c=1 <= c=8 <= c=32",
            series or None, lambda s: " / ".join(f"{v:.0f}" for v in s),
            lambda s: all(a <= b for a, b in zip(s, s[1:])))
    p = point(load, 2, 32)
    total = p and p["cpu_s_per_order"]["total"]
    jit = p and p.get("jit_cpu_s") is not None and p["ok"] and 1000 * p["jit_cpu_s"] / p["ok"]
    add("CPU per order, every process, 2 Orders, c=32", "<= 1.0 ms", total and total * 1000,
        lambda v, p=p: f"{v:.2f} ms ({per_process(p)}" + (f"; of it the JVMs' JIT {jit:.2f}" if jit else "") + ")",
        lambda v: v <= 1.0)
    for what, key, target in (("row in the table", "row_ms", 500), ("stock applied", "stock_ms", 250)):
        lag = p and (p.get(key) or {}).get("p99")
        add(f"order created -> {what}, 2 Orders, c=32, p99", f"<= {target} ms", lag, lambda v: f"{v:.0f} ms",
            lambda v, t=target: v <= t)
    # Against the best minute, not the first: the first still warms up (the JVMs, MariaDB's buffer
    # pool) and would make any later fall look like a gain.
    rates = [m["per_s"] for m in stability["minutes"]] if stability else []
    add(f"throughput over {len(rates) or 5} minutes, 2 Orders, "
        f"c={stability['arguments']['concurrency'] if stability else 32}", "last minute >= 0.9x the best",
        rates[-1] / max(rates) if rates and max(rates) else None,
        lambda r: f"{r:.3f}x ({' / '.join(f'{v:.0f}' for v in rates)})", lambda r: r >= 0.9)
    lags = [p["stock_lag_s"] for p in (load or {}).get("points", [])]
    worst = None if not lags or None in lags else max(lags)
    add("stock applied after the load ends (worst point)", "<= 1 s", worst, lambda v: f"{v:.2f} s", lambda v: v <= 1)
    for side in ("catalog", "sink"):
        rate = drain and drain.get(side, {}).get("events_per_s")
        add(f"{side} drains a {drain['arguments']['events'] if drain else 50000}-event backlog", ">= 2000 events/s",
            rate, lambda v: f"{v:.0f} events/s", lambda v: v >= 2000)
    for name, target in (("encode", 1.3), ("decode", 1.5)):
        worst_ratio = envelope and max(envelope[name]["ratios"])
        add(f"envelope {name} vs json (worst of {envelope['arguments']['reps'] if envelope else 5})",
            f"<= {target}x", worst_ratio, lambda v: f"{v:.2f}x", lambda v, t=target: v <= t)
    return out


def main() -> int:
    envelope, load, drain, stability = newest("envelope"), newest("load"), newest("drain"), newest("stability")
    print("Goals, from " + ", ".join(r["file"] for r in (envelope, load, drain, stability) if r) +
          f" ({(load or drain or envelope or stability or {}).get('machine', {}).get('cpu_count', '?')} cores)")
    table = rows(envelope, load, drain, stability)
    width = max(len(goal) for goal, *_ in table)
    for goal, target, measured, met in table:
        verdict = "-" if met is None else ("met" if met else "MISSED")
        print(f"  {goal:<{width}}  {target:<20} {measured:<28} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
