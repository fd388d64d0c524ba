"""What cluster mode promises: replicated topics, a two-worker Connect group running one sink task
per partition, two Catalogs sharing their group, and a status screen that shows it all."""
import subprocess
import sys

from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from bus.lag import describe_group
from connect import register, rest
from stack.infra import CONNECT_GROUP
from tests.support.waiting import wait_until


def topic_config(admin: AdminClient, topic: str, key: str) -> str:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(timeout=10)[key].value


def test_orders_and_connect_topics_are_replicated(cluster):
    s = cluster.settings
    admin = AdminClient(s.kafka_client())
    topics = admin.list_topics(timeout=10).topics
    internal = [t for t in topics if t.startswith(CONNECT_GROUP + "-")]
    assert len(internal) == 3, sorted(topics)
    for topic in [s.orders_topic, *internal]:
        partitions = topics[topic].partitions.values()
        assert all(len(p.replicas) == 3 for p in partitions), (topic, [p.replicas for p in partitions])
        assert topic_config(admin, topic, "min.insync.replicas") == "2", topic
    assert len(topics[s.orders_topic].partitions) == register.TOPIC_PARTITIONS


def test_sink_runs_a_task_per_partition_on_both_workers(cluster):
    s = cluster.settings

    def spread():
        _, status = rest.call(s.connect_url, "GET", f"/connectors/{s.sink_name}/status")
        tasks = status.get("tasks", []) if isinstance(status, dict) else []
        running = [t for t in tasks if t["state"] == "RUNNING"]
        return tasks if len(running) == register.TOPIC_PARTITIONS and len({t["worker_id"] for t in running}) == 2 \
            else None
    tasks = wait_until(spread, timeout=60, what="3 sink tasks RUNNING across both workers")
    _, config = rest.call(s.connect_url, "GET", f"/connectors/{s.sink_name}/config")
    assert config["tasks.max"] == str(register.TOPIC_PARTITIONS), tasks


def test_catalogs_share_the_partitions(cluster):
    s = cluster.settings
    admin = AdminClient(s.kafka_client())

    def both_members():
        group = describe_group(admin, s.catalog_group)
        owned = [len(m.assignment.topic_partitions) for m in group.members]
        return group if len(owned) == 2 and sum(owned) == register.TOPIC_PARTITIONS and min(owned) > 0 else None
    group = wait_until(both_members, timeout=60, what="both Catalogs owning partitions")
    assert sorted(m.client_id for m in group.members) == ["catalog-1", "catalog-2"]


def test_cluster_status_shows_every_node(cluster):
    s = cluster.settings
    out = subprocess.run([sys.executable, "-m", "ops.cluster_status"], env={**s.to_env(), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    for node, address in enumerate(s.kafka_addresses, start=1):  # each on its own host
        assert f"{address:21} up   node {node}" in out.stdout
    for url in s.connect_urls:
        assert f"{url}" in out.stdout and "orders-sink/" in out.stdout
    assert "catalog-1" in out.stdout and "catalog-2" in out.stdout
    assert out.stdout.count(f"{s.orders_topic}[") == register.TOPIC_PARTITIONS
