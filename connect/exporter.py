"""The stack's own metrics, served by the watchdog process for Prometheus (stack/config/prometheus-alerts.yml).

Connect has no Prometheus endpoint and its JMX is not scraped here, so the watchdog, which reads
every connector's status anyway, exports what the alerts need from it: whether each connector and
each of its tasks is RUNNING. It also exports how many partitions of the cluster have fewer replicas
in sync than assigned (the brokers' own UnderReplicatedPartitions is JMX only), read from the
metadata every broker serves.

    ordersync_connector_running{connector}             1 RUNNING, else 0
    ordersync_connector_task_running{connector,task}   1 RUNNING, else 0 (FAILED, UNASSIGNED, PAUSED...)
    ordersync_connector_tasks{connector}               its tasks, as the status lists them
    ordersync_kafka_under_replicated_partitions        partitions whose ISR is smaller than their replicas
    ordersync_kafka_reachable                          1 when a broker answered that question, else 0
    ordersync_watchdog_last_check_timestamp_seconds    when the statuses were last read
"""

import threading
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

METADATA_TIMEOUT_S = 5


def under_replicated(admin: AdminClient, timeout: float = METADATA_TIMEOUT_S) -> int:
    """Partitions of every topic this client may describe whose ISR is smaller than their replicas."""
    topics = admin.list_topics(timeout=timeout).topics.values()
    return sum(1 for t in topics if t.error is None for p in t.partitions.values() if len(p.isrs) < len(p.replicas))


class StackCollector(Collector):
    """The last statuses the watchdog read (seen()), and the ISR, read at each scrape."""

    def __init__(self, admin: AdminClient | None):
        self._admin = admin
        self._lock = threading.Lock()
        self._connectors: dict[str, tuple[str, list[tuple[str, str]]]] = {}
        self._checked = 0.0

    def seen(self, statuses: dict) -> None:
        """The body of GET /connectors?expand=status: each connector's state and its tasks'."""
        with self._lock:
            self._connectors = {name: (info["status"]["connector"]["state"],
                                       [(str(t["id"]), t["state"]) for t in info["status"]["tasks"]])
                                for name, info in statuses.items()}
            self._checked = time.time()

    def describe(self):
        # Without it, register() would collect once to learn the names: a metadata request at start.
        return []

    def collect(self):
        with self._lock:
            connectors, checked = dict(self._connectors), self._checked
        running = GaugeMetricFamily("ordersync_connector_running", "1 while the connector is RUNNING",
                                    labels=["connector"])
        task_running = GaugeMetricFamily("ordersync_connector_task_running", "1 while the task is RUNNING",
                                         labels=["connector", "task"])
        tasks = GaugeMetricFamily("ordersync_connector_tasks", "The connector's tasks", labels=["connector"])
        for name, (state, task_states) in connectors.items():
            running.add_metric([name], 1 if state == "RUNNING" else 0)
            tasks.add_metric([name], len(task_states))
            for task, task_state in task_states:
                task_running.add_metric([name, task], 1 if task_state == "RUNNING" else 0)
        yield from (running, task_running, tasks)
        yield GaugeMetricFamily("ordersync_watchdog_last_check_timestamp_seconds",
                                "When the watchdog last read the connectors' statuses", value=checked)
        if self._admin is not None:
            try:
                count = under_replicated(self._admin)
            except KafkaException:
                count = None  # no broker answers: no count, and ordersync_kafka_reachable says so
            yield GaugeMetricFamily("ordersync_kafka_reachable", "1 when a broker answered the metadata request",
                                    value=0 if count is None else 1)
            if count is None:
                return
            yield GaugeMetricFamily("ordersync_kafka_under_replicated_partitions",
                                    "Partitions whose in-sync replicas are fewer than their replicas", value=count)
