"""Load bench: ghz against CreateOrder on 1, 2 and 4 Order instances, next to a bare grpcio echo server.

    .venv/bin/python bench/load.py [--instances 1,2,4] [--concurrency 1,8,32] [--seconds 30] [--warmup 10]
                                   [--jit-settle 120] [--sink-tasks 1]

For each number of Order instances it starts a private topology (stack.topology: its own MariaDB,
Kafka, Connect with the sink, one Catalog, N Orders, on free ports), makes the stock unlimited, and
for each concurrency:
  1. warms up (ghz for --warmup seconds) and waits until the stock and the table caught up;
  2. runs ghz for --seconds against every instance at once: one ghz process per instance, the
     concurrency split between them (1 on 4 instances loads one instance: one call in flight is
     one call), each call with its own request_id (ghz's {{.UUID}}: a new UUIDv4 per call) and
     the token of the point's user (--metadata, signed with the stack's key, as a client reuses it);
  3. waits until the Catalog's applied_orders and the sink's table have every acknowledged order.

Per point: orders/s acknowledged (OK calls / the load's duration; ghz stops with
--duration-stop=wait, so calls in flight at the end finish and count), p50/p99 latency of the
OK calls, errors by status, the ratio to the echo server at the same concurrency, CPU seconds
per order of every process (utime + stime from /proc, from the start of the load until both
sides caught up, so the work done after the load counts too), the stock and table lags (seconds
from the end of the load until the counts reach the acknowledged orders, polled every 0.1 s),
and the Catalog group's consumer lag every 0.5 s during and after the load (topic end offsets
minus committed offsets, from Kafka: the bench asks MariaDB nothing while the load runs).
Before a topology's first point, its instances are loaded at the highest concurrency in 10 s
rounds until the JVMs' JIT compilers go quiet (at most --jit-settle seconds): the points then
measure the steady state, and each still says how much of its CPU the compilers took ("of it
JIT"). The CPU figures are not net of idle work: at low rates a JVM's housekeeping weighs in, so
each point also records every process's CPU per second with no load (2 s just before it).

The baseline, in the same run and before any stack starts: bench/echo_server.py (a bare grpcio
unary server in its own process, the same method, proto and request data) loaded by ghz at the
same concurrencies. Results: one table on stdout, bench/results/load-<timestamp>.json and .png;
a run with the default matrix and durations also writes bench/results/latest.png.
"""

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import grpc
import measure
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from catalog_svc import stock
from connect.register import ConnectorError
from ordersync.config import ROOT, private_key
from ordersync.serving import auth
from ordersync.serving.channels import open_channel
from stack.process import StackError
from stack.topology import Topology, free_port

PROTOS = ROOT / "protos"
PROTO = PROTOS / "ordersync" / "order" / "v1" / "order_service.proto"
CALL = "ordersync.order.v1.OrderService/CreateOrder"
PRODUCTS = ["CATALOG-001", "CATALOG-002", "CATALOG-003"]
CALL_TIMEOUT = "20s"
IDLE_S = 2.0
DEFAULTS = {"instances": (1, 2, 4), "concurrency": (1, 8, 32), "seconds": 30.0, "warmup": 10.0}
# Before a topology's first point its JVMs are loaded until their JIT compilers go quiet (bench's
# --jit-settle): in the first minute under load the broker's C2 compiler took 0.33 ms of CPU per
# order, half of the broker's, and the Connect worker's 0.14.
JIT_ROUND_S = 10.0
JIT_SETTLED = 0.10  # cores compiling in a round: below a tenth of a core, what is left is small


# ---------------------------------------------------------------- ghz

def split(concurrency: int, addresses: list[str]) -> list[tuple[str, int]]:
    """The concurrency shared as evenly as it goes between the addresses; none gets 0."""
    share, extra = divmod(concurrency, len(addresses))
    targets = [(address, share + (1 if i < extra else 0)) for i, address in enumerate(addresses)]
    return [(address, c) for address, c in targets if c > 0]


def ghz_command(address: str, concurrency: int, seconds: float, data: dict, token: str, out: Path,
                ca: str = "") -> list[str]:
    """ghz's command line: over TLS trusting `ca` (a GRPC_TLS_CA), plaintext without."""
    metadata = {auth.METADATA_KEY: f"Bearer {token}"}
    return [str(measure.GHZ), f"--cacert={ca}" if ca else "--insecure", f"--proto={PROTO}", f"--import-paths={PROTOS}",
            f"--call={CALL}",
            f"--data={json.dumps(data)}", f"--metadata={json.dumps(metadata)}", f"--concurrency={concurrency}",
            f"--duration={seconds:g}s", "--duration-stop=wait", f"--timeout={CALL_TIMEOUT}", "--format=json",
            f"--output={out}", address]


def user_token(key: Ed25519PrivateKey, user_id: str) -> str:
    """A token of `user_id` for one load (an hour is longer than any point)."""
    return auth.mint(key, user_id, auth.USER, 3600)


def run_ghz(targets: list[tuple[str, int]], seconds: float, user_id: str, token: str, ca: str = "") -> dict:
    """One ghz per target at once, for `seconds`, every call as `user_id` with `token` (over TLS
    trusting `ca`, if given); their reports summed up."""
    with tempfile.TemporaryDirectory(prefix="ghz-") as tmp:
        procs = []
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for i, (address, concurrency) in enumerate(targets):
            # {{.UUID}}: ghz renders the data per call, with a new UUIDv4 each time.
            data = {"user_id": user_id, "product_id": PRODUCTS[i % len(PRODUCTS)], "qty": 1, "request_id": "{{.UUID}}"}
            out = Path(tmp) / f"ghz-{i}.json"
            procs.append((subprocess.Popen(ghz_command(address, concurrency, seconds, data, token, out, ca),
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), out))
        reports = []
        for proc, out in procs:
            output, _ = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"ghz exited with {proc.returncode}: {output.strip()}")
            reports.append(json.loads(out.read_text()))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = summarize(reports)
    summary["targets"] = [{"address": a, "concurrency": c} for a, c in targets]
    summary["ghz_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return summary


def lag_summary(values) -> dict:
    ordered = sorted(float(v) for v in values)
    return {"n": len(ordered), "p50": percentile(ordered, 50), "p99": percentile(ordered, 99),
            "max": ordered[-1] if ordered else None}


def percentile(ordered: list[float], p: float) -> float | None:
    """Nearest rank of an ordered list."""
    if not ordered:
        return None
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def summarize(reports: list[dict]) -> dict:
    statuses: Counter = Counter()
    for report in reports:
        statuses.update(report.get("statusCodeDistribution") or {})
    ok = statuses.pop("OK", 0)
    duration = max(report["total"] for report in reports) / 1e9  # ns; includes the calls finished after the end
    latencies = sorted(d["latency"] / 1e6 for report in reports for d in report.get("details") or []
                       if d.get("status") == "OK")
    return {"ok": ok, "errors": dict(statuses), "duration_s": duration, "per_s": ok / duration if duration else 0.0,
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


# ---------------------------------------------------------------- the echo baseline

def echo_baseline(concurrencies: list[int], seconds: float, warmup: float, aio: bool = False) -> dict[int, dict]:
    """ghz against bench/echo_server.py in a process of its own (`aio`: its grpc.aio server)."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    command = [sys.executable, str(Path(__file__).with_name("echo_server.py")), str(port)] + (["--aio"] if aio else [])
    server = subprocess.Popen(command, cwd=ROOT)
    try:
        with open_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        cpu = measure.CpuMeter({"echo-server": server.pid})
        # The echo checks no token; its calls carry one all the same, so that both send the same bytes.
        token = user_token(Ed25519PrivateKey.generate(), "bench-echo")
        results = {}
        for concurrency in concurrencies:
            print(f"echo baseline{' (grpc.aio)' if aio else ''}: concurrency {concurrency}, {seconds:g}s", flush=True)
            if warmup > 0:
                run_ghz([(address, concurrency)], warmup, "bench-echo", token)
            before = cpu.snapshot()
            result = run_ghz([(address, concurrency)], seconds, "bench-echo", token)
            result["cpu_s"] = cpu.since(before)
            result["cpu_s_per_call"] = measure.per_unit(result["cpu_s"], result["ok"])
            results[concurrency] = result
        return results
    finally:
        server.terminate()
        server.wait(30)


# ---------------------------------------------------------------- the service

class Point:
    """One (instances, concurrency) point on a topology that is up."""

    def __init__(self, topology: Topology, run: str, sync_timeout: float):
        self.topology = topology
        self.settings = settings = topology.settings
        self.run = run
        self.sync_timeout = sync_timeout
        self.catalog_db = stock.create_engine(settings.mariadb_url(settings.catalog_db))
        self.orders_db = sa.create_engine(settings.mariadb_url(settings.orders_db), pool_pre_ping=True)
        self.catalog_lag = measure.LagProbe(settings, settings.catalog_group, settings.accepted_topic)
        self.key = private_key(settings.auth_private_key)

    def close(self) -> None:
        self.catalog_lag.close()
        self.catalog_db.dispose()
        self.orders_db.dispose()

    def unlimited_stock(self) -> None:
        with self.catalog_db.begin() as conn:
            conn.execute(sa.text("UPDATE products SET stock = 1000000000"))

    def applied(self) -> int:
        return measure.count_rows(self.catalog_db, "SELECT COUNT(*) FROM applied_orders")

    def in_table(self, user_id: str) -> int:
        # The table's (user_id, created_at) key: a range of this point's rows, not a scan of all.
        return measure.count_rows(self.orders_db, f"SELECT COUNT(*) FROM {self.settings.orders_table} "
                                                  "WHERE user_id = :user_id", {"user_id": user_id})

    def wait_synced(self, user_id: str, applied_target: int, table_target: int) -> dict[str, float | None]:
        """Seconds from now until the stock and the table have the orders (polled every 0.1 s).

        COUNT(*) of applied_orders scans it all, so it is asked only once the Catalog's group has
        committed everything (from Kafka, cheap; it commits after applying): its polls would
        otherwise weigh on MariaDB's CPU per order."""
        return measure.wait_until_all({
            "stock": lambda: self.catalog_lag.lag() == 0 and self.applied() >= applied_target,
            "table": lambda: self.in_table(user_id) >= table_target,
        }, self.sync_timeout)

    def per_order_lags(self, user_id: str) -> tuple[dict, dict]:
        """Per order of `user_id`: created (its created_at, the Order instance's clock) -> its row
        landed (landed_at) and -> its stock applied (applied_orders.applied_at), both by MariaDB's
        clock on this machine, p50/p99/max in ms."""
        created = "TIMESTAMPDIFF(MICROSECOND, o.created_at, {}) / 1000.0"
        table = f"`{self.settings.orders_table}` o"
        with self.orders_db.connect() as conn:
            row = conn.execute(sa.text(f"SELECT {created.format('o.landed_at')} FROM {table} WHERE o.user_id = :u"),
                               {"u": user_id}).scalars().all()
            stock = conn.execute(sa.text(
                f"SELECT {created.format('a.applied_at')} FROM {table} JOIN "
                f"`{self.settings.catalog_db}`.applied_orders a ON a.order_id = o.order_id WHERE o.user_id = :u"),
                {"u": user_id}).scalars().all()
        return lag_summary(row), lag_summary(stock)

    def jit_cpu_s(self) -> float:
        """CPU seconds the stack's JVMs (the broker, the Connect worker) spent compiling, so far."""
        return sum(measure.compiler_cpu_seconds(pid) for pid in measure.stack_pids(self.topology).values())

    def settle_jit(self, concurrency: int, longest: float) -> dict:
        """Load the instances at `concurrency` in rounds of JIT_ROUND_S until the JVMs' compilers
        used under JIT_SETTLED of a core in a round, or for `longest` seconds: the points measure the
        steady state, as a service that has run for a while has it."""
        targets = split(concurrency, [part.address for part in self.topology.orders])
        name = f"bench-{self.run}-{len(targets)}i-jit"
        began, rounds = time.monotonic(), []
        while time.monotonic() - began < longest:
            before = self.jit_cpu_s()
            run_ghz(targets, JIT_ROUND_S, name, user_token(self.key, name))
            rounds.append((self.jit_cpu_s() - before) / JIT_ROUND_S)
            if rounds[-1] < JIT_SETTLED:
                break
        settled = {"seconds": time.monotonic() - began, "compiler_cores_per_round": rounds,
                   "settled": bool(rounds) and rounds[-1] < JIT_SETTLED}
        print(f"  JIT: the JVMs' compilers used {', '.join(f'{r:.2f}' for r in rounds)} cores in "
              f"{JIT_ROUND_S:g} s rounds; {'settled' if settled['settled'] else 'not settled'} after "
              f"{settled['seconds']:.0f} s", flush=True)
        return settled

    def measure(self, concurrency: int, seconds: float, warmup: float) -> dict:
        addresses = [part.address for part in self.topology.orders]
        targets = split(concurrency, addresses)
        name = f"bench-{self.run}-{len(addresses)}i-c{concurrency}"
        point: dict = {"instances": len(addresses), "concurrency": concurrency}
        if warmup > 0:
            print(f"  warm-up: {warmup:g}s", flush=True)
            applied_before = self.applied()
            warm = run_ghz(targets, warmup, f"{name}-warmup", user_token(self.key, f"{name}-warmup"))
            synced = self.wait_synced(f"{name}-warmup", applied_before + warm["ok"], warm["ok"])
            point["warmup"] = {"ok": warm["ok"], "errors": warm["errors"], "synced_s": synced}
        applied_before = self.applied()
        cpu = measure.CpuMeter(measure.stack_pids(self.topology))
        idle_before = cpu.snapshot()
        time.sleep(IDLE_S)  # what the processes use with no load (JVM and broker housekeeping, polls)
        point["idle_cpu_s_per_s"] = {name: s / IDLE_S for name, s in cpu.since(idle_before).items()}
        cpu_before, jit_before = cpu.snapshot(), self.jit_cpu_s()
        print(f"  load: {seconds:g}s on {len(targets)} of {len(addresses)} instance(s)", flush=True)
        began = time.monotonic()
        # A probe of its own: the series samples from its thread while this one polls.
        probe = measure.LagProbe(self.settings, self.settings.catalog_group, self.settings.accepted_topic)
        series = measure.LagSeries(probe, began)
        series.start()
        try:
            result = run_ghz(targets, seconds, name, user_token(self.key, name))
            point["load_end_s"] = time.monotonic() - began
            point["cpu_s_during_load"] = cpu.since(cpu_before)
            lags = self.wait_synced(name, applied_before + result["ok"], result["ok"])
            point["cpu_s"] = cpu.since(cpu_before)
            point["jit_cpu_s"] = self.jit_cpu_s() - jit_before  # part of the JVMs' cpu_s
            time.sleep(1.0)  # a second of the series after the sync
        finally:
            point["catalog_lag_series"] = series.stop()
            series.probe.close()
        point.update(result)
        point["stock_lag_s"], point["table_lag_s"] = lags["stock"], lags["table"]
        point["row_ms"], point["stock_ms"] = self.per_order_lags(name)
        point["cpu_s_per_order"] = measure.per_unit(point["cpu_s"], result["ok"])
        return point


def run_instances(instances: int, opts, run: str, echo: dict[int, dict], results: dict) -> None:
    print(f"== {instances} Order instance(s): starting a private topology", flush=True)
    topology = Topology.private(orders=instances, sink_tasks=opts.sink_tasks)
    point_maker = None
    try:
        topology.up()
        if "mariadb" not in results["versions"]:
            results["versions"] = measure.versions(topology.settings)
        point_maker = Point(topology, run, opts.sync_timeout)
        point_maker.unlimited_stock()
        if opts.jit_settle > 0:
            results.setdefault("jit_settle", {})[str(instances)] = point_maker.settle_jit(
                max(opts.concurrency), opts.jit_settle)
        for concurrency in opts.concurrency:
            print(f"== {instances} instance(s), concurrency {concurrency}", flush=True)
            point = point_maker.measure(concurrency, opts.seconds, opts.warmup)
            base = echo.get(concurrency)
            point["ratio_to_echo"] = point["per_s"] / base["per_s"] if base and base["per_s"] else None
            results["points"].append(point)
    except (StackError, ConnectorError, RuntimeError) as err:
        print(f"!! {instances} instance(s): {err}", flush=True)
        results["failures"].append({"instances": instances, "error": str(err)})
    finally:
        if point_maker is not None:
            point_maker.close()
        topology.destroy()


# ---------------------------------------------------------------- output

def _ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cpu_ms(per_order: dict, names: list[str]) -> str:
    value = sum(per_order.get(n) or 0.0 for n in names) if names else None
    return "-" if value is None or not any(n in per_order for n in names) else f"{value * 1000:.2f}"


def table(results: dict) -> str:
    head = (f"{'inst':>4} {'conc':>4} {'ok/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7} {'x echo':>7} "
            f"{'stock s':>7} {'table s':>7} {'row p99':>7} {'stock99':>7} | CPU ms per order: {'mariadb':>7} "
            f"{'kafka':>6} {'connect':>7} {'watchdg':>7} {'gate':>6} {'catalog':>7} {'orders':>6} {'total':>6} "
            f"{'of it JIT':>9}")
    lines = [head, "-" * len(head)]
    for concurrency, e in sorted(results["echo"].items()):
        lines.append(f"{'echo':>4} {concurrency:>4} {e['per_s']:>8.0f} {_ms(e['p50_ms']):>7} {_ms(e['p99_ms']):>7} "
                     f"{sum(e['errors'].values()):>7} {'1':>7} {'':>7} {'':>7} {'':>7} {'':>7} | echo server: "
                     f"{_cpu_ms(e['cpu_s_per_call'], ['echo-server'])} ms per call, ghz {e['ghz_cpu_s']:.1f} s")
    for p in results["points"]:
        per = p["cpu_s_per_order"]
        orders = [n for n in per if n.startswith("order-")]
        lines.append(
            f"{p['instances']:>4} {p['concurrency']:>4} {p['per_s']:>8.1f} {_ms(p['p50_ms']):>7} {_ms(p['p99_ms']):>7} "
            f"{sum(p['errors'].values()):>7} {_ms(p['ratio_to_echo'], 3):>7} {_ms(p['stock_lag_s'], 2):>7} "
            f"{_ms(p['table_lag_s'], 2):>7} {_ms(p.get('row_ms', {}).get('p99'), 0):>7} "
            f"{_ms(p.get('stock_ms', {}).get('p99'), 0):>7} | {'':>17} {_cpu_ms(per, ['mariadb']):>7} "
            f"{_cpu_ms(per, ['kafka']):>6} {_cpu_ms(per, ['connect']):>7} {_cpu_ms(per, ['sink-watchdog']):>7} "
            f"{_cpu_ms(per, [n for n in per if n.startswith('gate-')]):>6} {_cpu_ms(per, ['catalog-1']):>7} "
            f"{_cpu_ms(per, orders):>6} {_cpu_ms(per, ['total']):>6} "
            f"{_ms(p.get('jit_cpu_s') and 1000 * p['jit_cpu_s'] / p['ok'] if p['ok'] else None, 2):>9}")
    for f in results["failures"]:
        lines.append(f"{f['instances']:>4}    - failed: {f['error'].splitlines()[0]}")
    lines.append("errors: non-OK calls (by status in the JSON); stock s / table s: seconds from the end of the load "
                 "until applied_orders / the table had every acknowledged order (- : not within the timeout); row p99 / "
                 "stock99: ms from each order's created_at to its row's landed_at / its applied_at, p99")
    return "\n".join(lines)


def plot(results: dict, paths: list[Path]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (thr, p99, lag) = plt.subplots(1, 3, figsize=(17, 5))
    echo = sorted(results["echo"].items())
    for ax, key, title in ((thr, "per_s", "throughput (OK calls/s)"), (p99, "p99_ms", "p99 latency (ms)")):
        for instances in sorted({p["instances"] for p in results["points"]}):
            pts = [p for p in results["points"] if p["instances"] == instances and p[key] is not None]
            ax.plot([p["concurrency"] for p in pts], [p[key] for p in pts], marker="o", label=f"{instances} Order(s)")
        ax.plot([c for c, _ in echo], [e[key] for _, e in echo], marker="s", linestyle="--", color="grey",
                label="bare grpcio echo")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")  # the echo is an order of magnitude or two above
        concurrencies = results["arguments"]["concurrency"]
        ax.set_xticks(concurrencies, [str(c) for c in concurrencies])
        ax.set_xlabel("concurrency (calls in flight)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    for p in results["points"]:
        samples = [s for s in p["catalog_lag_series"] if "lag" in s]
        line = lag.plot([s["t"] for s in samples], [s["lag"] for s in samples],
                        label=f"{p['instances']} Order(s), c={p['concurrency']}")
        lag.axvline(p["load_end_s"], color=line[0].get_color(), linestyle=":", alpha=0.5)
    lag.set_xlabel("seconds since the load started (dotted: its end)")
    lag.set_title("Catalog consumer lag (events)")
    lag.grid(True, alpha=0.3)
    lag.legend(fontsize="small")
    fig.suptitle(f"ordersync load bench, {results['machine']['cpu_count']} cores, "
                 f"{results['arguments']['seconds']:g}s per point ({results['started']})")
    fig.tight_layout()
    for path in paths:
        fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- main

def int_list(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--instances", type=int_list, default=DEFAULTS["instances"], help="Order instance counts (1,2,4)")
    args.add_argument("--concurrency", type=int_list, default=DEFAULTS["concurrency"], help="calls in flight (1,8,32)")
    args.add_argument("--seconds", type=float, default=DEFAULTS["seconds"], help="load per point (30)")
    args.add_argument("--warmup", type=float, default=DEFAULTS["warmup"], help="warm-up per point (10)")
    args.add_argument("--sink-tasks", type=int, default=1, help="the sink's tasks (SINK_TASKS, 1)")
    args.add_argument("--jit-settle", type=float, default=120,
                      help="longest load before the first point, until the JVMs' JIT settles (120 s; 0: none)")
    args.add_argument("--sync-timeout", type=float, default=300, help="longest wait for stock and table (300)")
    opts = args.parse_args()
    if not measure.GHZ.exists():
        print(f"{measure.GHZ} is missing: run `make setup`", file=sys.stderr)
        return 2
    full = all(getattr(opts, k) == v if k in ("instances", "concurrency") else getattr(opts, k) >= v
               for k, v in DEFAULTS.items())
    started = time.strftime("%Y%m%d-%H%M%S")
    results: dict = {"bench": "load", "started": started, "machine": measure.machine(), "versions": measure.versions(),
                     "arguments": {**vars(opts), "full_run": full}, "echo": {}, "points": [], "failures": []}
    run = uuid.uuid4().hex[:8]
    results["echo"] = echo_baseline(list(opts.concurrency), opts.seconds, opts.warmup)
    for instances in opts.instances:
        run_instances(instances, opts, run, results["echo"], results)

    print()
    print(table(results))
    measure.RESULTS.mkdir(parents=True, exist_ok=True)
    out = measure.RESULTS / f"load-{started}.json"
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    pngs = [out.with_suffix(".png")] + ([measure.RESULTS / "latest.png"] if full else [])
    try:
        plot(results, pngs)
    except ImportError:
        print("no matplotlib: no plot (`make bench` installs bench/requirements.txt)")
        pngs = []
    print(f"\nwrote {out}" + "".join(f", {p}" for p in pngs) + ("" if full else " (not a full run: latest.png untouched)"))
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
