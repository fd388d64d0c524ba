"""bus.lag.group_offsets with a fake probe (no broker)."""
from types import SimpleNamespace

from confluent_kafka import TopicPartition

from bus.lag import COUNTED_BELOW, group_offsets


class Record:
    def __init__(self, partition, offset):
        self._p, self._o = partition, offset

    def error(self):
        return None

    def partition(self):
        return self._p

    def offset(self):
        return self._o


class Probe:
    """A topic's commits and watermarks; `records`: {partition: offsets holding records} (the
    other offsets are transaction markers, stepped over as a read_committed consumer does)."""

    def __init__(self, topics, commits, watermarks, records=None):
        self.topics, self.commits, self.watermarks = topics, commits, watermarks
        self.records = records or {}
        self.at = {}

    def list_topics(self, topic, timeout):
        return SimpleNamespace(topics=self.topics)

    def committed(self, partitions, timeout):
        return [TopicPartition(tp.topic, tp.partition, self.commits.get(tp.partition, -1001)) for tp in partitions]

    def get_watermark_offsets(self, tp, timeout):
        return self.watermarks[tp.partition]

    def assign(self, partitions):
        self.at = {tp.partition: tp.offset for tp in partitions}

    def unassign(self):
        self.at = {}

    def position(self, partitions):
        return [TopicPartition(tp.topic, tp.partition, self.at[tp.partition]) for tp in partitions]

    def poll(self, timeout):
        for p, at in self.at.items():
            end = self.watermarks[p][1]
            while at < end:
                at += 1
                self.at[p] = at
                if at - 1 in self.records.get(p, ()):
                    return Record(p, at - 1)
        return None


def test_the_groups_next_offset_and_the_end_per_partition_uncommitted_from_the_start():
    topic = SimpleNamespace(error=None, partitions={0: None, 1: None, 2: None})
    probe = Probe({"orders": topic}, commits={0: 7, 2: 3}, watermarks={0: (0, 10), 1: (4, 9), 2: (3, 3)},
                  records={0: {7, 8, 9}, 1: {4, 5, 6, 7, 8}})
    assert group_offsets(probe, "orders") == {0: (7, 10), 1: (4, 9), 2: (3, 3)}


def test_commit_markers_after_the_groups_commit_are_no_records_left():
    topic = SimpleNamespace(error=None, partitions={0: None, 1: None})
    # p0: the last record at 4, its transaction's marker at 5; p1: a record at 3, markers at 2 and 4.
    probe = Probe({"accepted": topic}, commits={0: 5, 1: 2}, watermarks={0: (0, 6), 1: (0, 5)},
                  records={0: {0, 2, 4}, 1: {0, 3}})
    assert group_offsets(probe, "accepted") == {0: (6, 6), 1: (4, 5)}


def test_a_large_remainder_is_counted_in_offsets_not_read():
    topic = SimpleNamespace(error=None, partitions={0: None})
    probe = Probe({"accepted": topic}, commits={0: 0}, watermarks={0: (0, COUNTED_BELOW + 1)})
    assert group_offsets(probe, "accepted") == {0: (0, COUNTED_BELOW + 1)}


def test_no_such_topic_is_none():
    missing = SimpleNamespace(error="UNKNOWN_TOPIC_OR_PART", partitions={})
    assert group_offsets(Probe({"orders": missing}, {}, {}), "orders") is None
    assert group_offsets(Probe({}, {}, {}), "orders") is None
