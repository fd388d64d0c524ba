"""The operator's view on one screen: parts, connectors, consumer lag, dead letters, service health.

    python -m ops.status        (make status)

Exit code 0 when everything that should run is healthy, 1 otherwise.
"""
import sys

from confluent_kafka import Consumer, KafkaException, TopicPartition

from bus.lag import group_offsets
from connect import rest
from ops.kafka_errors import explain
from ordersync.config import Settings, exits_on_bad_setting
from stack.topology import Topology


def parts_report(report: list[dict]) -> list[str]:
    lines = []
    for part in report:
        state = "healthy" if part["healthy"] else ("running, NOT healthy" if part["pid"] else "down")
        port = part["address"] if part["port"] else "-"
        lines.append(f"  {part['name']:14} {state:21} pid {part['pid'] or '-':<8} {port}")
    return lines


def connectors_report(settings: Settings) -> tuple[list[str], bool]:
    try:
        status, body = rest.call(settings.connect_url, "GET", "/connectors?expand=status", timeout=5)
    except OSError as e:
        return [f"  the worker at {settings.connect_url} does not answer: {e}"], False
    if status != 200:
        return [f"  the worker answered HTTP {status}"], False
    lines, ok = [], True
    for name, info in sorted(body.items()):
        st = info["status"]
        lines.append(f"  {name}: {st['connector']['state']}")
        for task in st["tasks"]:
            trace = (task.get("trace") or "").splitlines()
            lines.append(f"    task {task['id']} {task['state']} on {task.get('worker_id', '?')}"
                         + (f": {trace[0][:160]}" if trace else ""))
            ok = ok and task["state"] == "RUNNING"
        ok = ok and st["connector"]["state"] == "RUNNING"
    return lines or ["  (no connectors)"], ok


def lag_report(client: dict, group: str, topic: str) -> list[str]:
    """The lag of one group on one topic, in all and per partition (client: Settings.kafka_client())."""
    # A consumer of that group id that never subscribes reads its commits without joining it.
    probe = Consumer({**client, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = group_offsets(probe, topic)
        if offsets is None:
            return [f"  {group} on {topic}: no such topic"]
        lags = {p: end - position for p, (position, end) in offsets.items()}
        parts = ", ".join(f"p{p}={lag}" for p, lag in lags.items())
        return [f"  {group} on {topic}: lag {sum(lags.values())} ({parts})"]
    finally:
        probe.close()


def dead_letter_depth(consumer: Consumer, topic: str) -> str:
    meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
    if meta is None or meta.error is not None:
        return f"  {topic}: 0 (not created yet)"
    depth = 0
    for p in meta.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
        depth += high - low
    return f"  {topic}: {depth}"


@exits_on_bad_setting
def main() -> int:
    settings = Settings.from_env()
    topology = Topology(settings)
    print(f"Stack ({settings.stack_dir}):")
    report = topology.status()  # one round of health checks serves the lines and the exit code
    print("\n".join(parts_report(report)))
    ok = topology.healthy(report)
    print(f"Connectors ({settings.connect_url}):")
    lines, connectors_ok = connectors_report(settings)
    print("\n".join(lines))
    ok = ok and connectors_ok
    client = settings.kafka_client()  # in a secured cluster: as the admin
    consumer = Consumer({**client, "group.id": "ops-status", "enable.auto.commit": False, "socket.timeout.ms": 5000})
    try:
        print("Consumer lag:")
        print("\n".join(lag_report(client, settings.gate_group, settings.orders_topic)))
        print("\n".join(lag_report(client, settings.catalog_group, settings.accepted_topic)))
        print("\n".join(lag_report(client, f"connect-{settings.sink_name}", settings.accepted_topic)))
        print("Dead letters:")
        for topic in (settings.rejected_topic, settings.catalog_dlq_topic, settings.sink_dlq_topic):
            print(dead_letter_depth(consumer, topic))
    except KafkaException as e:
        print(f"  Kafka does not answer: {explain(e, settings)}")
        ok = False
    finally:
        consumer.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
