"""What bench/load.py and bench/drain.py measure with: CPU time per process, row counts, consumer lag.

A helper module of the benches (imported as `measure`: the benches run as scripts, with bench/
first on the path), not a bench itself.
"""

import json
import os
import platform
import re
import subprocess
import threading
import time
from importlib import metadata
from pathlib import Path

import sqlalchemy as sa
from confluent_kafka import Consumer, libversion

from bus.lag import group_offsets
from ordersync.config import ROOT, Settings
from stack import infra
from stack.topology import Topology

RESULTS = ROOT / "bench" / "results"
GHZ = infra.TOOLS_DIR / "bin" / "ghz"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- CPU time

def _stat_cpu_seconds(stat: Path) -> float:
    """utime + stime of a /proc stat file (a process's or one of its threads'), in seconds."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat(5)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (utime + stime of /proc/<pid>/stat)."""
    try:
        return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))
    except OSError:
        return None


def compiler_cpu_seconds(pid: int) -> float:
    """CPU seconds a JVM's JIT compiler threads (C1, C2) have used so far; 0 for any other process.
    A JVM compiles its hot code in its first minutes under load: that CPU is spent once, not per
    order, and is told apart from the steady state."""
    used = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            if (task / "comm").read_text().startswith(("C1 CompilerThre", "C2 CompilerThre")):
                used += _stat_cpu_seconds(task / "stat")
        except OSError:  # the thread ended meanwhile
            continue
    return used


def buffer_pool_misses(conn) -> int:
    """InnoDB's reads of pages that were not in its buffer pool so far (Innodb_buffer_pool_reads),
    on a SQLAlchemy connection to the stack's MariaDB."""
    return int(conn.execute(sa.text("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_reads'")).one()[1])


def stack_pids(topology: Topology) -> dict[str, int]:
    """The pid of every part that runs: MariaDB, Kafka, Connect, the sink watchdog, the services."""
    pids = {}
    for part in [*topology.infra, *topology.services]:
        pid = topology.supervisor.pid(part)
        if pid is not None:
            pids[part.name] = pid
    return pids


class CpuMeter:
    """CPU seconds of named processes between two moments: `snapshot()` now, `since(snap)` later."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids

    def snapshot(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) or 0.0 for name, pid in self.pids.items()}

    def since(self, before: dict[str, float]) -> dict[str, float]:
        now = self.snapshot()
        return {name: now[name] - before.get(name, 0.0) for name in now}


def write_results(kind: str, results: dict) -> Path:
    """`results` as bench/results/<kind>-<its start time>.json; the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{kind}-{results['started']}.json"
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return out


def per_unit(cpu: dict[str, float], units: int) -> dict[str, float | None]:
    """CPU seconds per unit of work (order, event) for each process, and their sum as "total"."""
    if units <= 0:
        return {**{name: None for name in cpu}, "total": None}
    out: dict[str, float | None] = {name: seconds / units for name, seconds in cpu.items()}
    out["total"] = sum(cpu.values()) / units
    return out


# ---------------------------------------------------------------- rows

def count_rows(engine: sa.Engine, sql: str, params: dict | None = None) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params or {}).scalar_one())


def wait_until_all(checks: dict, timeout: float, interval: float = 0.1) -> dict[str, float | None]:
    """Seconds until each `checks[name]()` first returned True, polled together every `interval`
    from now; None for a check that did not pass within `timeout`."""
    began = time.monotonic()
    passed: dict[str, float | None] = {name: None for name in checks}
    while True:
        for name, check in checks.items():
            if passed[name] is None and check():
                passed[name] = time.monotonic() - began
        if all(v is not None for v in passed.values()) or time.monotonic() - began > timeout:
            return passed
        time.sleep(max(0.0, interval - (time.monotonic() - began) % interval))


# ---------------------------------------------------------------- consumer lag

class LagProbe:
    """The topic's end offsets and a group's committed offsets, summed over partitions."""

    def __init__(self, settings: Settings, group: str, topic: str):
        self.topic = topic
        # A consumer of that group id that never subscribes reads its commits without joining it.
        self._consumer = Consumer({**settings.kafka_client(), "group.id": group,
                                   "enable.auto.commit": False})

    def offsets(self) -> tuple[int, int]:
        """(end offsets sum, committed offsets sum); a partition without a commit counts from its start."""
        offsets = group_offsets(self._consumer, self.topic) or {}
        return sum(end for _, end in offsets.values()), sum(position for position, _ in offsets.values())

    def lag(self) -> int:
        end, committed = self.offsets()
        return end - committed

    def close(self) -> None:
        self._consumer.close()


class LagSeries(threading.Thread):
    """Samples a group's consumer lag every `every` seconds until stopped: [(seconds since t0, end, committed, lag)]."""

    def __init__(self, probe: LagProbe, t0: float, every: float = 0.5):
        super().__init__(daemon=True)
        self.probe, self.t0, self.every = probe, t0, every
        self.samples: list[dict] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            at = time.monotonic()
            try:
                end, committed = self.probe.offsets()
                # Stamped when the answers are in: asking takes a few ms, more on a busy machine.
                self.samples.append({"t": round(time.monotonic() - self.t0, 3), "end": end, "committed": committed,
                                     "lag": end - committed})
            except Exception as e:  # a sample lost is not a bench lost
                self.samples.append({"t": round(time.monotonic() - self.t0, 3), "error": str(e)})
            self.stopped.wait(max(0.0, self.every - (time.monotonic() - at)))

    def stop(self) -> list[dict]:
        self.stopped.set()
        self.join()
        return self.samples


# ---------------------------------------------------------------- what ran

def _first(pattern: str, folder: Path) -> str | None:
    for path in sorted(folder.glob("*.jar")):
        match = re.fullmatch(pattern, path.name)
        if match:
            return match.group(1)
    return None


def ghz_version() -> str | None:
    """The module version ghz was built from (`go version -m`; `ghz --version` says "dev" for go install)."""
    try:
        info = subprocess.run(["go", "version", "-m", str(GHZ)], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    match = re.search(r"^\s*mod\s+github\.com/bojand/ghz\s+(\S+)", info, re.MULTILINE)
    return match.group(1) if match else None


def versions(settings: Settings | None = None) -> dict:
    out = {
        "python": platform.python_version(),
        **{package: metadata.version(package) for package in ("grpcio", "protobuf", "confluent-kafka", "SQLAlchemy")},
        "librdkafka": libversion()[0],
        "kafka": _first(r"kafka_2\.13-(.+)\.jar", infra.KAFKA_LIBS),
        "debezium-jdbc-sink": _first(r"debezium-connector-jdbc-(.+)\.jar", infra.PLUGIN_DIR / "debezium-connector-jdbc"),
        "ghz": ghz_version(),
    }
    if settings is not None:
        engine = sa.create_engine(settings.mariadb_url())
        try:
            with engine.connect() as conn:
                out["mariadb"] = str(conn.execute(sa.text("SELECT VERSION()")).scalar_one())
        finally:
            engine.dispose()
    return out


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load_average_at_start": os.getloadavg()}
