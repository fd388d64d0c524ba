"""The stack's Prometheus against the session's private stack: it scrapes every part, each up and
labelled with its service and part; and an alert fires for real: a Catalog of this test's own that
loses its database gets stuck retrying an order, ConsumerStuck fires for it, and resolves once the
database is back (the rules themselves: tests/unit/test_alert_rules.py).

Every assertion is on what Prometheus answered: a Prometheus that does not answer fails the test."""

import secrets
import time
import uuid

import pymysql
import sqlalchemy as sa
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from ordersync.config import Settings
from ordersync.order.v1 import order_service_pb2
from stack import infra
from stack.topology import free_port, service_part
from tests.support.products import as_root
from tests.support.prometheus import alerts, prometheus
from tests.support.waiting import wait_for_row, wait_until

FIRST_SCRAPE_S = 90  # file_sd is read every 5 s, each target scraped every 5 s: generous
FIRES_WITHIN_S = 120  # stuck at the next scrape, pending at the next evaluation, firing 15 s later
RESOLVES_WITHIN_S = 120


def active_targets(settings: Settings) -> list[dict]:
    return prometheus(settings, "/api/v1/targets", state="active")["activeTargets"]


def alerts_of(settings: Settings, alertname: str, part: str) -> list[dict]:
    """The active alerts (pending or firing) Prometheus lists for that alert and part."""
    return alerts(settings, alertname, part=part)


def described(targets: list[dict]) -> str:
    return "\n".join(f"  {t['labels']} {t['scrapeUrl']} {t['health']} {t['lastError']}" for t in targets)


def test_prometheus_scrapes_every_part_and_each_is_up(topology, stack):
    # What the stack runs, named independently of Topology.scrape_targets: (job, service, part) -> address.
    expected = {("ordersync", part.name.rsplit("-", 1)[0], part.name): f"{part.host}:{part.env['METRICS_PORT']}"
                for part in topology.services}
    watchdog = topology.watchdog
    expected[("ordersync", "sink-watchdog", "sink-watchdog")] = f"{watchdog.host}:{watchdog.env['METRICS_PORT']}"
    expected[("prometheus", None, None)] = f"{stack.prometheus_host}:{stack.prometheus_port}"
    expected[("zipkin", None, None)] = f"{stack.zipkin_host}:{stack.zipkin_port}"  # a private stack traces

    def key(target):
        labels = target["labels"]
        return labels["job"], labels.get("service"), labels.get("part")

    deadline = time.monotonic() + FIRST_SCRAPE_S
    while True:
        targets = {key(t): t for t in active_targets(stack)}
        not_up = [k for k in expected if k not in targets or targets[k]["health"] != "up"]
        if not not_up or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not_up == [], f"not scraped, or not up, after {FIRST_SCRAPE_S}s: {not_up}\n{described(list(targets.values()))}"
    for k, address in expected.items():
        assert targets[k]["labels"]["instance"] == address, (k, targets[k]["labels"])
    # Its own view of each: the up series the rules (PartDown) read, labelled alike.
    up = {(r["metric"]["job"], r["metric"].get("service"), r["metric"].get("part")): r["value"][1]
          for r in prometheus(stack, "/api/v1/query", query="up")["result"]}
    assert {k: up.get(k) for k in expected} == {k: "1" for k in expected}


# --- ConsumerStuck, for real ---------------------------------------------------------------------

def processlist_ids(settings: Settings, user: str) -> list[int]:
    conn = pymysql.connect(unix_socket=str(settings.stack_dir / "run" / "mariadb.sock"), user="root")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (user,))
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def cut_off(settings: Settings, user: str) -> int:
    """Lock the account and kill its open connections: the next statement of its pool fails, and so
    does every reconnection. How many were killed."""
    as_root(settings, f"ALTER USER '{user}'@'%' ACCOUNT LOCK")
    killed = 0
    for connection in processlist_ids(settings, user):
        try:
            as_root(settings, f"KILL CONNECTION {int(connection)}")
            killed += 1
        except pymysql.err.MySQLError as e:
            if e.args[0] != 1094:  # 1094: gone meanwhile (unknown thread id)
                raise
    return killed


def start_at_the_end(settings: Settings, group: str, topic: str) -> None:
    """Commit the group's offsets at the topic's end, so that its consumer reads only what comes next:
    the records the earlier tests left there (poison ones among them) are not this test's."""
    probe = Consumer(settings.kafka_client(**{"group.id": group, "enable.auto.commit": False}))
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        ends = [TopicPartition(topic, p, probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for p in partitions]
        probe.commit(offsets=ends, asynchronous=False)
    finally:
        probe.close()


def test_a_catalog_that_loses_its_database_fires_consumer_stuck_and_it_resolves(topology, stack, order_stubs):
    run = uuid.uuid4().hex[:8]
    name, database, user = f"alert-catalog-{run}", f"ordersync_test_alert_{run}", f"alert_{run}"
    group, password = f"alert-stock-{run}", secrets.token_hex(16)
    metrics_port = free_port()
    part = service_part(stack, name, "catalog_svc", free_port(), {
        "MARIADB_USER": user, "MARIADB_PASSWORD": password, "CATALOG_DB": database,
        "CATALOG_GROUP": group, "METRICS_PORT": str(metrics_port)})
    supervisor, targets_file = topology.supervisor, None
    as_root(stack, f"CREATE DATABASE `{database}`", f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
            f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'")
    try:
        start_at_the_end(stack, group, stack.accepted_topic)
        pid = supervisor.start(part)
        supervisor.wait_healthy(part, pid, timeout=60)
        targets_file = infra.write_targets(stack, name, [("catalog", name, f"{part.host}:{metrics_port}")])

        # Control: scraped, up, serving, and ConsumerStuck neither pending nor firing for it.
        def scraped_serving():
            result = prometheus(stack, "/api/v1/query", query=f'ordersync_consumer_serving{{part="{name}"}}')["result"]
            return result if result and result[0]["value"][1] == "1" else None
        serving = wait_until(scraped_serving, timeout=FIRST_SCRAPE_S, interval=1,
                             what=f"Prometheus to scrape {name}'s ordersync_consumer_serving 1")
        assert serving[0]["metric"]["service"] == "catalog" and serving[0]["metric"]["job"] == "ordersync", serving
        target = [t for t in active_targets(stack) if t["labels"].get("part") == name]
        assert [t["health"] for t in target] == ["up"], described(target)
        time.sleep(2 * infra.SCRAPE_EVERY_S)  # the rules evaluated with it at least once
        pending = prometheus(stack, "/api/v1/query", query=f'ALERTS{{alertname="ConsumerStuck", part="{name}"}}')
        assert pending["result"] == [], pending
        assert alerts_of(stack, "ConsumerStuck", name) == []

        # Its database gone, an order to apply: it retries, stuck.
        killed = cut_off(stack, user)
        order_id = order_stubs[0].CreateOrder(order_service_pb2.CreateOrderRequest(
            user_id=f"alert-{run}", product_id="CATALOG-001", qty=1, request_id=str(uuid.uuid4())),
            timeout=15).order.order_id
        began = time.monotonic()

        def firing():
            return [a for a in alerts_of(stack, "ConsumerStuck", name) if a["state"] == "firing"]
        deadline = time.monotonic() + FIRES_WITHIN_S
        while not (fired := firing()) and time.monotonic() < deadline:
            time.sleep(1)
        assert fired, (f"ConsumerStuck not firing for {name} {FIRES_WITHIN_S}s after the order "
                       f"(alerts: {alerts_of(stack, 'ConsumerStuck', name)}, {killed} connections killed)\n"
                       f"{supervisor.log_tail(part)}")
        fired_after = time.monotonic() - began
        assert fired[0]["labels"]["severity"] == "page"
        assert fired[0]["annotations"]["summary"].startswith(f"{name} is stuck retrying"), fired

        # The database back: it applies the order, and the alert resolves.
        as_root(stack, f"ALTER USER '{user}'@'%' ACCOUNT UNLOCK")
        began = time.monotonic()
        wait_until(lambda: alerts_of(stack, "ConsumerStuck", name) == [], timeout=RESOLVES_WITHIN_S, interval=1,
                   what=f"ConsumerStuck to resolve for {name}")
        resolved_after = time.monotonic() - began
        print(f"\nConsumerStuck firing {fired_after:.1f}s after the order, resolved {resolved_after:.1f}s "
              f"after the database came back")
        engine = sa.create_engine(stack.mariadb_url(database), pool_pre_ping=True)
        try:
            wait_for_row(engine, "SELECT order_id FROM applied_orders WHERE order_id = :o", {"o": order_id})
        finally:
            engine.dispose()
    finally:
        supervisor.stop(part, grace=10)
        if targets_file is not None:
            targets_file.unlink(missing_ok=True)
        as_root(stack, f"DROP USER IF EXISTS '{user}'@'%'", f"DROP DATABASE IF EXISTS `{database}`")
        delete_group(stack, group)


def delete_group(settings: Settings, group: str) -> None:
    """Delete a consumer group whose members are gone (a leftover would only show in the group
    listings: said, not raised, so that a cleanup never hides the test's own outcome)."""
    admin = AdminClient(settings.kafka_client())  # kept until the answer: its futures die with it
    for future in admin.delete_consumer_groups([group], request_timeout=10).values():
        try:
            future.result(timeout=15)
        except Exception as e:
            print(f"consumer group {group} not deleted: {e!r}")
