"""The watchdog's exporter (connect.exporter.StackCollector) as Prometheus scrapes it: each
connector's and task's state from the last status read, the under-replicated partitions from the
metadata a broker answers, and what it says when no broker answers (no servers: a fake admin)."""

import time

from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connect.exporter import StackCollector
from tests.doubles import Admin, replicated_partition, replicated_topic


def status(connector_state: str, *task_states: str) -> dict:
    """One connector of GET /connectors?expand=status&expand=info."""
    return {"info": {"config": {}}, "status": {"connector": {"state": connector_state},
                                               "tasks": [{"id": i, "state": s} for i, s in enumerate(task_states)]}}


def registered(collector: StackCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def scraped(registry: CollectorRegistry) -> dict[str, dict[frozenset, float]]:
    """What a scrape reads: {sample name: {labels: value}}, parsed back from the exposition text."""
    samples: dict[str, dict[frozenset, float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            samples.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return samples


HEALTHY_CLUSTER = {
    "orders": replicated_topic(replicated_partition([1, 2, 3], [1, 2, 3]), replicated_partition([2, 3, 1], [2, 3])),  # one behind
    "orders.accepted": replicated_topic(replicated_partition([3, 1, 2], [3])),  # another
    "catalog.products": replicated_topic(replicated_partition([1, 2, 3], [1, 2, 3])),
    # A topic the client may not describe: its partitions are not counted.
    "secret": replicated_topic(replicated_partition([1, 2], [1]), error=KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)),
}


def test_connectors_and_tasks_are_exported_running_1_else_0():
    collector = StackCollector(None)
    registry = registered(collector)
    collector.seen({"orders-sink": status("RUNNING", "RUNNING", "FAILED"),
                    "products-source": status("PAUSED", "UNASSIGNED")})
    value = registry.get_sample_value
    assert value("ordersync_connector_running", {"connector": "orders-sink"}) == 1
    assert value("ordersync_connector_running", {"connector": "products-source"}) == 0
    assert value("ordersync_connector_task_running", {"connector": "orders-sink", "task": "0"}) == 1
    assert value("ordersync_connector_task_running", {"connector": "orders-sink", "task": "1"}) == 0
    assert value("ordersync_connector_task_running", {"connector": "products-source", "task": "0"}) == 0
    assert value("ordersync_connector_tasks", {"connector": "orders-sink"}) == 2
    assert value("ordersync_connector_tasks", {"connector": "products-source"}) == 1


def test_a_connector_without_tasks_exports_0_tasks_and_no_task_sample():
    collector = StackCollector(None)
    registry = registered(collector)
    collector.seen({"orders-sink": status("RUNNING")})
    assert registry.get_sample_value("ordersync_connector_tasks", {"connector": "orders-sink"}) == 0
    assert "ordersync_connector_task_running" not in scraped(registry)


def test_a_connector_gone_from_the_next_status_is_gone_from_the_metrics():
    collector = StackCollector(None)
    registry = registered(collector)
    collector.seen({"orders-sink": status("RUNNING", "RUNNING"), "sink-copy": status("RUNNING", "FAILED", "RUNNING")})
    tasks = scraped(registry)["ordersync_connector_task_running"]
    assert {dict(labels)["connector"] for labels in tasks} == {"orders-sink", "sink-copy"}
    collector.seen({"orders-sink": status("RUNNING", "FAILED")})
    samples = scraped(registry)
    assert samples["ordersync_connector_running"] == {frozenset({("connector", "orders-sink")}): 1}
    assert samples["ordersync_connector_tasks"] == {frozenset({("connector", "orders-sink")}): 1}
    assert samples["ordersync_connector_task_running"] == {frozenset({("connector", "orders-sink"), ("task", "0")}): 0}


def test_the_last_check_is_when_the_statuses_were_last_read():
    collector = StackCollector(None)
    registry = registered(collector)
    assert registry.get_sample_value("ordersync_watchdog_last_check_timestamp_seconds") == 0  # never read yet
    before = time.time()
    collector.seen({})
    checked = registry.get_sample_value("ordersync_watchdog_last_check_timestamp_seconds")
    assert before <= checked <= time.time()


def test_under_replicated_partitions_are_counted_from_the_metadata_at_each_scrape():
    admin = Admin(HEALTHY_CLUSTER)
    registry = registered(StackCollector(admin))
    asked = admin.asked
    assert registry.get_sample_value("ordersync_kafka_reachable") == 1
    assert registry.get_sample_value("ordersync_kafka_under_replicated_partitions") == 2
    assert admin.asked > asked
    admin.topics = {"orders": replicated_topic(replicated_partition([1, 2, 3], [1, 2, 3]))}  # caught up
    assert registry.get_sample_value("ordersync_kafka_under_replicated_partitions") == 0


def test_when_no_broker_answers_it_says_unreachable_and_exports_no_count():
    collector = StackCollector(Admin(error=KafkaException(KafkaError(KafkaError._TRANSPORT, "all brokers down"))))
    registry = registered(collector)
    collector.seen({"orders-sink": status("RUNNING", "RUNNING")})
    samples = scraped(registry)
    assert samples["ordersync_kafka_reachable"] == {frozenset(): 0}
    assert "ordersync_kafka_under_replicated_partitions" not in samples  # not 0: unknown
    # The connectors' states are still served.
    assert samples["ordersync_connector_running"] == {frozenset({("connector", "orders-sink")}): 1}


def test_without_an_admin_there_is_no_kafka_family():
    samples = scraped(registered(StackCollector(None)))
    assert "ordersync_kafka_reachable" not in samples
    assert "ordersync_kafka_under_replicated_partitions" not in samples
    assert "ordersync_watchdog_last_check_timestamp_seconds" in samples
