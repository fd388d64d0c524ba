"""A consumer group's position on a topic, read from Kafka without joining the group."""

from confluent_kafka import Consumer, TopicPartition


def group_offsets(probe: Consumer, topic: str, timeout: float = 5) -> dict[int, tuple[int, int]] | None:
    """{partition: (the group's next offset, the end offset)} of `topic`, or None if there is no
    such topic.

    `probe` is a consumer made with the group's group.id that never subscribes: it reads the
    group's commits without joining it. A partition the group has not committed yet counts from
    its first offset (auto.offset.reset=earliest, as our consumers use)."""
    meta = probe.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        return None
    committed = probe.committed([TopicPartition(topic, p) for p in sorted(meta.partitions)], timeout=timeout)
    offsets = {}
    for tp in committed:
        low, high = probe.get_watermark_offsets(tp, timeout=timeout)
        offsets[tp.partition] = (tp.offset if tp.offset >= 0 else low, high)
    return offsets
