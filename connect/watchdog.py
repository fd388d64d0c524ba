"""Restarts the connectors' failed tasks: Kafka Connect never restarts a FAILED task by itself.

    python -m connect.watchdog          (the stack starts it next to the worker)

What it is still for, now that the gate decides every record before the sink sees it: a
failure that passes but outlasts the sink's own retries (MariaDB down longer than
flush.max.retries x flush.retry.delay.ms, 20 x 3 s). Every few seconds it reads the status of
each sink connector; a FAILED task is restarted, with a pause that doubles (up to 30 s) while it
keeps failing, and the first line of its trace is logged.

It never skips or dead-letters a record: whatever the sink reads, the gate accepted and the
Catalog applies, so a record the database refuses means the two implementations of the rules
disagree (tests/conformance is there so that they cannot) or the table was changed by hand. The
sink then stays stuck on it, visibly (`make status`, the task's trace in the watchdog's log),
rather than make the table and the stock disagree.

The products source (a MariaDbConnector) has one failure a restart cannot heal: its binlog
position is gone from the server (purged, or the source stopped longer than the binlog is kept),
which MariaDB answers with error 1236 at every start. Its snapshot.mode=when_needed should then
snapshot again, but Debezium decides that from the server's purged GTIDs, a set MariaDB leaves
empty. So the watchdog does what when_needed means: it stops the connector, deletes its committed
offsets and resumes it, and with no offsets the source snapshots the table again (every row's
state as it is now: README, "The source connector").
"""

import logging
import os
import sys
import time

from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from connect import rest
from connect.exporter import StackCollector
from ordersync.config import Settings, exits_on_bad_setting, listen_host
from ordersync.serving import metrics as exporter

log = logging.getLogger("connect.watchdog")

CHECK_EVERY_S = 3
FIRST_PAUSE_S, MAX_PAUSE_S = 2, 30
# The connectors it restarts (Connect never restarts a failed task): the sink and the products source.
WATCHED = ("JdbcSinkConnector", "MariaDbConnector")
SOURCE = "MariaDbConnector"
# MariaDB's answer to a binlog dump from a position it no longer has (ER_MASTER_FATAL_ERROR_READING_BINLOG).
POSITION_GONE = "Could not find GTID state requested by slave in any binlog files"
STOP_TIMEOUT_S = 30


class Watchdog:
    def __init__(self, settings: Settings, call=rest.call, clock=time.monotonic, on_statuses=lambda statuses: None):
        """`call(url, method, path)`: the worker's REST API (connect.rest.call); `on_statuses`: told
        every status read (connect.exporter.StackCollector.seen)."""
        self.settings = settings
        self._on_statuses = on_statuses
        self.url = settings.connect_url
        self._call, self._clock = call, clock
        self._pause: dict[str, float] = {}  # connector -> seconds to wait before the next restart
        self._next_try: dict[str, float] = {}

    def check_all(self) -> None:
        status, connectors = self._ask_a_worker("/connectors?expand=status&expand=info")
        if status != 200:
            return
        self._on_statuses(connectors)
        for name, info in connectors.items():
            if not info["info"]["config"].get("connector.class", "").endswith(WATCHED):
                continue
            failed = [t for t in info["status"]["tasks"] if t["state"] == "FAILED"]
            if not failed:
                self._pause.pop(name, None)  # running again: the next failure starts with a short pause
            elif self._clock() < self._next_try.get(name, 0):
                continue  # what it did last has not had its time yet
            elif (info["info"]["config"]["connector.class"].endswith(SOURCE)
                  and any(POSITION_GONE in (t.get("trace") or "") for t in failed)):
                self.snapshot_again(name)
                self._next_try[name] = self._clock() + MAX_PAUSE_S  # a snapshot takes a while to show RUNNING
            else:
                self.restart(name, failed)

    def snapshot_again(self, name: str) -> None:
        """Stop the source, delete its offsets, resume it: it snapshots the table again (KIP-875)."""
        log.warning("source %s: its binlog position is no longer on the server (purged); deleting its offsets "
                    "so that it snapshots the table again", name)
        path = f"/connectors/{rest.quote(name)}"
        self._call(self.url, "PUT", f"{path}/stop")
        deadline = self._clock() + STOP_TIMEOUT_S
        while self._call(self.url, "GET", f"{path}/status")[1].get("connector", {}).get("state") != "STOPPED":
            if self._clock() > deadline:
                log.warning("source %s: not STOPPED after %d s; resuming it as it was", name, STOP_TIMEOUT_S)
                break
            time.sleep(0.5)
        else:
            status, body = self._call(self.url, "DELETE", f"{path}/offsets")
            log.warning("source %s: offsets deleted (HTTP %s: %s)", name, status, body)
        self._call(self.url, "PUT", f"{path}/resume")

    def restart(self, name: str, failed: list[dict]) -> None:
        pause = self._pause.get(name, FIRST_PAUSE_S)
        for task in failed:
            trace = (task.get("trace") or "no trace").splitlines()[0]
            log.warning("connector %s: task %s FAILED (%s); restarting it", name, task["id"], trace)
            self._call(self.url, "POST", f"/connectors/{rest.quote(name)}/tasks/{task['id']}/restart")
        log.warning("connector %s: next restart in %.0f s if it fails again", name, pause)
        self._next_try[name] = self._clock() + pause
        self._pause[name] = min(pause * 2, MAX_PAUSE_S)

    def _ask_a_worker(self, path: str):
        """GET from the first worker that answers (any worker of the group forwards or answers),
        and keep talking to that one."""
        error = OSError("no Connect worker to ask")
        for url in dict.fromkeys([self.url, *self.settings.connect_urls]):
            try:
                answer = self._call(url, "GET", path)
            except OSError as e:
                error = e
                continue
            self.url = url
            return answer
        raise error


@exits_on_bad_setting
def main() -> int:
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sink-watchdog %(levelname)s %(message)s")
    heartbeat = settings.stack_dir / "run" / "sink-watchdog.alive"
    # The stack's metrics (connect.exporter) on CONNECT_PORT + METRICS_PORT_OFFSET, or METRICS_PORT.
    collector = StackCollector(AdminClient(settings.kafka_client(log_level=0)))
    REGISTRY.register(collector)
    exporter.serve(settings.metrics_port(settings.connect_port, os.environ), host=listen_host(os.environ))
    watchdog = Watchdog(settings, on_statuses=collector.seen)
    log.info("watching the sink connectors of %s", settings.connect_url)
    while True:
        try:
            watchdog.check_all()
        except OSError as e:  # the worker is down or restarting: it will come back
            log.debug("worker not reachable: %s", e)
        except Exception:  # never die: a watchdog that stops watching heals nothing
            log.exception("check failed; trying again")
        heartbeat.touch()
        time.sleep(CHECK_EVERY_S)


if __name__ == "__main__":
    sys.exit(main())
