"""Losing a node is a non-event: kill -9 one broker, one Connect worker, one gate or one Catalog
mid-load, or freeze a broker (SIGSTOP, then SIGCONT).

Each case: 4 clients place 1-unit orders on both Order instances; after a few seconds one node
is killed with SIGKILL. While it is down, the test waits until the cluster has worked around it
(the partitions have new leaders / the tasks run on the other worker / the other gate or
Catalog owns every partition) and records how long that took; the load runs a few seconds more against the
smaller cluster, then the node is restarted, the load goes on and stops. The ledger is read
once everything settled (generous deadline). Times are printed, never asserted; the counts are.
"""
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from bus.lag import describe_group
from connect import register, rest
from tests.support.faults import PartFault, load_through_fault
from tests.support.products import wait_in_views
from tests.support.prometheus import alerts, query
from tests.support.tables import add_product
from tests.support.waiting import wait_until

LOAD_BEFORE_KILL_S = 5
DOWN_AFTER_TAKE_OVER_S = 6  # the load goes on against the smaller cluster
TAKE_OVER_TIMEOUT_S = 120
LOAD_AFTER_RESTART_S = 8
SETTLE_S = 240


def orders_partitions(cluster):
    """The orders topic's partition metadata, or None when the broker asked did not answer in time."""
    s = cluster.settings
    admin = AdminClient({**s.kafka_client(), "log_level": 0})
    try:
        return admin.list_topics(s.orders_topic, timeout=5).topics[s.orders_topic].partitions.values()
    except KafkaException:  # e.g. asked the frozen broker
        return None


def leaders_elsewhere(cluster, node_id: int):
    """Every orders partition has a leader other than the dead node (a new one where it led)."""
    partitions = orders_partitions(cluster)
    return partitions is not None and all(p.leader not in (-1, node_id) for p in partitions)


def back_in_sync(cluster):
    """The restarted broker is back in the ISR of every orders partition."""
    partitions = orders_partitions(cluster)
    return partitions is not None and all(len(p.isrs) == len(p.replicas) == 3 for p in partitions)


def tasks_on_survivor(cluster, survivor_url: str):
    """Every sink task RUNNING, all on the surviving worker."""
    s = cluster.settings
    try:
        _, status = rest.call(survivor_url, "GET", f"/connectors/{s.sink_name}/status", timeout=5)
    except OSError:
        return False
    tasks = status.get("tasks", []) if isinstance(status, dict) else []
    return (len(tasks) == register.TOPIC_PARTITIONS and all(t["state"] == "RUNNING" for t in tasks)
            and {f"http://{t['worker_id']}" for t in tasks} == {survivor_url})


def partitions_on(cluster, group_id: str, member: str):
    """The named member (a Catalog, a gate) owns every partition of its topic, alone."""
    s = cluster.settings
    admin = AdminClient({**s.kafka_client(), "log_level": 0})
    try:
        group = describe_group(admin, group_id, timeout=5)
    except KafkaException:
        return False
    owners = {m.client_id: len(m.assignment.topic_partitions) for m in group.members}
    return owners == {member: register.TOPIC_PARTITIONS}


# victim, how it is lost, what "worked around it" means, what to wait for once it is back
CASES = {
    "broker": ("kafka-2", "kill", lambda c: leaders_elsewhere(c, 2), back_in_sync),
    "worker": ("connect-2", "kill", lambda c: tasks_on_survivor(c, c.settings.connect_urls[0]), None),
    "catalog": ("catalog-2", "kill", lambda c: partitions_on(c, c.settings.catalog_group, "catalog-1"), None),
    # Its open transaction is aborted when it times out (5 s): until then the readers of
    # orders.accepted wait at it, and the other gate takes over its partitions of orders.
    "gate": ("gate-2", "kill", lambda c: partitions_on(c, c.settings.gate_group, "gate-1"), None),
    # No firewall here to cut a broker off the network; a frozen one looks the same to the others
    # (open connections that never answer, no RST as after a kill), though it does nothing meanwhile.
    "frozen-broker": ("kafka-3", "freeze", lambda c: leaders_elsewhere(c, 3), back_in_sync),
}


def under_replicated_seen(cluster) -> bool:
    """Whether the cluster's Prometheus scraped a count of under-replicated partitions above 0 from
    the watchdog, and holds the UnderReplicatedPartitions alert (pending: it fires after 1 minute)."""
    counted = query(cluster.settings, "ordersync_kafka_under_replicated_partitions > 0")
    return bool(counted) and bool(alerts(cluster.settings, "UnderReplicatedPartitions"))


@pytest.fixture(scope="module")
def load_product(cluster):
    product_id = add_product(cluster.settings, "CLUSTER-LOAD")
    wait_in_views(cluster, product_id)
    return product_id


@pytest.mark.parametrize("case", list(CASES))
def test_lose_a_node_mid_load(cluster, load_product, case, capsys):
    victim, how, worked_around, rejoined = CASES[case]
    fault = PartFault(cluster, victim, how)
    seen = {"rejoin": ""}

    def work_around():
        lost_at = time.monotonic()
        wait_until(lambda: worked_around(cluster), timeout=TAKE_OVER_TIMEOUT_S, interval=0.25,
                   what=f"the cluster to work around {victim}")
        seen["took_over"] = time.monotonic() - lost_at
        if case == "broker":  # the cluster's Prometheus sees it: the watchdog's count, the alert pending
            wait_until(lambda: under_replicated_seen(cluster), timeout=TAKE_OVER_TIMEOUT_S, interval=1,
                       what="Prometheus to see under-replicated partitions and UnderReplicatedPartitions pending")
            seen["rejoin"] = f" | under-replicated in Prometheus {time.monotonic() - lost_at:4.1f}s after kill"

    def bring_back():
        fault.recover()
        if rejoined is not None:
            restarted_at = time.monotonic()
            wait_until(lambda: rejoined(cluster), timeout=TAKE_OVER_TIMEOUT_S, what=f"{victim} back in sync")
            seen["rejoin"] += f" | back in ISR {time.monotonic() - restarted_at:4.1f}s after restart"

    run = load_through_fault(
        cluster, load_product, f"{'kill -9' if how == 'kill' else 'freeze'} {victim}", fault.inject, bring_back,
        capsys=capsys, before_s=LOAD_BEFORE_KILL_S, while_down=work_around, down_s=DOWN_AFTER_TAKE_OVER_S,
        after_s=LOAD_AFTER_RESTART_S, settle_s=SETTLE_S,
        figures=lambda run: [f"acked while down {run.acked_while_down:4}, longest pause {run.longest_pause:4.1f}s",
                             f"worked around in {seen['took_over']:4.1f}s{seen['rejoin']}",
                             f"all acked in table+stock {run.settled_at - run.stopped_at:4.1f}s after the load stopped"])
    ledger = run.ledger
    assert (ledger["lost"], ledger["duplicated"], ledger["missing"], ledger["double"]) == (0, 0, 0, 0), ledger
    assert run.acked_while_down > 0, f"no order was acknowledged while {victim} was down ({run.load.refused})"
    if case == "catalog":  # the Order instances price from their views: no order depends on a Catalog
        assert run.load.refused == {}, f"orders refused while {victim} was down: {run.load.refused}"
