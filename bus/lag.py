"""Lag: a consumer group's position on a topic, read from Kafka without joining the group
(group_offsets), a group's members (describe_group), and a consumer's own, as it measures it
while it polls (LagMeter)."""

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

log = logging.getLogger(__name__)

# A transactional writer (the gate) ends each transaction with a commit marker, which takes an
# offset but is no record: a group that consumed everything can still be an offset or a few
# behind the end. A remainder this small is read to count the records really left.
COUNTED_BELOW = 100
# What a group's coordinator answers while it moves to another broker or loads the group.
_COORDINATOR_MOVING = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                       KafkaError.COORDINATOR_NOT_AVAILABLE)


def describe_group(admin, group: str, timeout: float = 10):
    """The ConsumerGroupDescription of `group`, asked again while its coordinator moves (after a
    broker's restart the group's coordinator answers NOT_COORDINATOR, or is still loading, for a
    few seconds); a KafkaException that is not retriable, or past `timeout`, is raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return admin.describe_consumer_groups([group], request_timeout=timeout)[group].result()
        except KafkaException as e:
            error = e.args[0]
            moving = error.retriable() or error.code() in _COORDINATOR_MOVING
            if not moving or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


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


class LagMeter:
    """A consumer's own lag, {(topic, partition): records left}: measured by the consumer's polling
    thread at most every max_age seconds (a round trip per assigned partition, each waiting up to
    `timeout`), read from any thread. Not measured from the exporter's thread: a call into the
    Kafka consumer from another thread can wait until the polling stops.

    next_offsets() gives the next offset to handle of the partitions the consumer knows (what it
    handled, or its position); for the others the group's committed offset is next, or the
    partition's first (auto.offset.reset=earliest). A partition whose offsets cannot be read now
    (a broker down) keeps its last value."""

    def __init__(self, consumer: Consumer, next_offsets, max_age: float = 5.0, timeout: float = 0.5):
        self._consumer, self._next_offsets = consumer, next_offsets
        self.max_age, self._timeout = max_age, timeout
        self._lag: dict[tuple[str, int], int] = {}
        self._at = float("-inf")

    def last(self) -> dict[tuple[str, int], int]:
        return dict(self._lag)

    def measure(self, max_age: float | None = None) -> dict[tuple[str, int], int]:
        """Measure unless done less than max_age seconds ago; the lag, as last measured."""
        if time.monotonic() - self._at < (self.max_age if max_age is None else max_age):
            return self.last()
        self._at = time.monotonic()
        try:
            assigned = self._consumer.assignment()
            known = self._next_offsets()
            unknown = [tp for tp in assigned if (tp.topic, tp.partition) not in known]
            offsets = self._consumer.committed(unknown, timeout=self._timeout) if unknown else []
            committed = {(c.topic, c.partition): c.offset for c in offsets}
        except KafkaException as e:
            log.debug("lag not measured: %s", e)
            return self.last()
        lag = {}
        for tp in assigned:
            where = (tp.topic, tp.partition)
            try:
                low, high = self._consumer.get_watermark_offsets(tp, timeout=self._timeout)
            except KafkaException as e:
                log.debug("lag of %s not measured: %s", where, e)
                if where in self._lag:
                    lag[where] = self._lag[where]
                continue
            at = known.get(where, committed.get(where, -1))
            lag[where] = max(0, high - (at if at >= 0 else low))
        self._lag = lag  # replaced whole: a reader in another thread sees one measure or the next
        return self.last()
