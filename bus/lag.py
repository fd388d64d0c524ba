"""A consumer group's position on a topic, read from Kafka without joining the group."""

import time

from confluent_kafka import Consumer, TopicPartition

# A transactional writer (the gate) ends each transaction with a commit marker, which takes an
# offset but is no record: a group that consumed everything can still be an offset or a few
# behind the end. A remainder this small is read to count the records really left.
COUNTED_BELOW = 100


def group_offsets(probe: Consumer, topic: str, timeout: float = 5) -> dict[int, tuple[int, int]] | None:
    """{partition: (the group's next offset, the end)} of `topic`, or None if there is no such
    topic; end - next is the records left. Where that remainder is small it is read, and the
    next offset is moved past the commit markers it holds (so that a done group shows 0 left).

    `probe` is a consumer made with the group's group.id that never subscribes: it reads the
    group's commits without joining it, and (read_committed) the records after them. A
    partition the group has not committed yet counts from its first offset
    (auto.offset.reset=earliest, as our consumers use)."""
    meta = probe.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        return None
    committed = probe.committed([TopicPartition(topic, p) for p in sorted(meta.partitions)], timeout=timeout)
    offsets = {}
    for tp in committed:
        low, high = probe.get_watermark_offsets(tp, timeout=timeout)
        offsets[tp.partition] = (tp.offset if tp.offset >= 0 else low, high)
    small = {p: at for p, (at, end) in offsets.items() if 0 < end - at <= COUNTED_BELOW}
    for p, left in _records_left(probe, topic, small, {p: offsets[p][1] for p in small}, timeout).items():
        offsets[p] = (offsets[p][1] - left, offsets[p][1])
    return offsets


def _records_left(probe: Consumer, topic: str, starts: dict[int, int], ends: dict[int, int],
                  timeout: float) -> dict[int, int]:
    """The records (not markers) from each start to its end; a partition not read to its end in
    time is left out (its offsets stand)."""
    if not starts:
        return {}
    probe.assign([TopicPartition(topic, p, at) for p, at in starts.items()])
    counted = {p: 0 for p in starts}
    done: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            done = {tp.partition for tp in probe.position([TopicPartition(topic, p) for p in counted])
                    if tp.offset >= ends[tp.partition]}
            if done >= set(counted):
                return counted
            m = probe.poll(0.2)
            if m is not None and not m.error():
                p, at = m.partition(), m.offset()
                if p is not None and at is not None and at < ends[p]:
                    counted[p] += 1
        return {p: n for p, n in counted.items() if p in done}
    finally:
        probe.unassign()
