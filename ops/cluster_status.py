"""The cluster on one screen: each broker, each Connect worker with its tasks, each member of the
Catalog's group, and the ISR of each partition of the orders topic.

    python -m ops.cluster_status        (make cluster-status)

Exit code 0 when every broker and worker answers, every task runs and every partition of
the orders topic has all its replicas in sync; 1 otherwise.
"""
import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from bus.lag import describe_group
from connect import rest
from ordersync.config import Settings, exits_on_bad_setting

TIMEOUT_S = 5


def brokers_report(settings: Settings) -> tuple[list[str], bool]:
    """Each broker asked on its own address: up (its node id) or down."""
    lines, ok = [], True
    for address in settings.kafka_addresses:
        admin = AdminClient(settings.kafka_client(**{"bootstrap.servers": address, "log_level": 0}))
        try:
            meta = admin.list_topics(timeout=TIMEOUT_S)
        except KafkaException as e:
            lines.append(f"  {address:21} DOWN ({e.args[0].str() if e.args else e})")
            ok = False
            continue
        node = next((b.id for b in meta.brokers.values() if f"{b.host}:{b.port}" == address), "?")
        lines.append(f"  {address:21} up   node {node}   ({len(meta.brokers)} brokers registered)")
    return lines, ok


def workers_report(settings: Settings) -> tuple[list[str], bool]:
    """Each worker up or down, and the tasks (of every connector) that run on it."""
    down, statuses = set(), {}
    for url in settings.connect_urls:
        try:
            status, body = rest.call(url, "GET", "/connectors?expand=status", timeout=TIMEOUT_S)
        except OSError:
            status, body = None, None
        if status == 200:
            statuses = body  # any worker tells the whole group's assignment
        else:
            down.add(url)
    tasks: dict[str, list[str]] = {url: [] for url in settings.connect_urls}
    ok = not down
    for name, info in sorted(statuses.items()):
        for task in info["status"]["tasks"]:
            tasks.setdefault(f"http://{task.get('worker_id', '?')}", []).append(
                f"{name}/{task['id']} {task['state']}")
            ok = ok and task["state"] == "RUNNING"
    lines = [f"  {url:28} DOWN" if url in down else f"  {url:28} up   tasks: {', '.join(listed) or '(none)'}"
             for url, listed in tasks.items()]
    return lines, ok


def group_report(admin: AdminClient, group: str) -> list[str]:
    """Each member of a consumer group: its client id (the instance's name), member id and partitions."""
    described = describe_group(admin, group, TIMEOUT_S)
    lines = [f"  group {group}: {described.state.name}, {len(described.members)} members"]
    for member in sorted(described.members, key=lambda m: m.client_id):
        parts = sorted(tp.partition for tp in member.assignment.topic_partitions)
        lines.append(f"    {member.client_id:16} {member.member_id[-36:]:36} {member.host:18} partitions {parts}")
    return lines


def isr_report(admin: AdminClient, topic: str) -> tuple[list[str], bool]:
    meta = admin.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
    if meta is None or meta.error is not None:
        return [f"  {topic}: no such topic"], False
    lines, ok = [], True
    for p in sorted(meta.partitions.values(), key=lambda p: p.id):
        in_sync = len(p.isrs) == len(p.replicas)
        ok = ok and in_sync and p.leader >= 0
        lines.append(f"  {topic}[{p.id}] leader {p.leader} replicas {sorted(p.replicas)} isr {sorted(p.isrs)}"
                     + ("" if in_sync else "   UNDER-REPLICATED"))
    return lines, ok


@exits_on_bad_setting
def main() -> int:
    settings = Settings.from_env()
    ok = True
    print(f"Brokers ({settings.kafka_bootstrap}, {settings.kafka_security_protocol}):")
    lines, good = brokers_report(settings)
    print("\n".join(lines))
    ok = ok and good
    print("Connect workers:")
    lines, good = workers_report(settings)
    print("\n".join(lines))
    ok = ok and good
    admin = AdminClient(settings.kafka_client(log_level=0))
    try:
        print("Catalog consumer group:")
        print("\n".join(group_report(admin, settings.catalog_group)))
        print(f"ISR of {settings.orders_topic}:")
        lines, good = isr_report(admin, settings.orders_topic)
        print("\n".join(lines))
        ok = ok and good
    except KafkaException as e:
        print(f"  Kafka at {settings.kafka_bootstrap} does not answer: {e}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

