"""bus.lag.group_offsets with a fake probe (no broker)."""
from types import SimpleNamespace

from confluent_kafka import TopicPartition

from bus.lag import group_offsets


class Probe:
    def __init__(self, topics, commits, watermarks):
        self.topics, self.commits, self.watermarks = topics, commits, watermarks

    def list_topics(self, topic, timeout):
        return SimpleNamespace(topics=self.topics)

    def committed(self, partitions, timeout):
        return [TopicPartition(tp.topic, tp.partition, self.commits.get(tp.partition, -1001)) for tp in partitions]

    def get_watermark_offsets(self, tp, timeout):
        return self.watermarks[tp.partition]


def test_the_groups_next_offset_and_the_end_per_partition_uncommitted_from_the_start():
    topic = SimpleNamespace(error=None, partitions={0: None, 1: None, 2: None})
    probe = Probe({"orders": topic}, commits={0: 7, 2: 3}, watermarks={0: (0, 10), 1: (4, 9), 2: (3, 3)})
    assert group_offsets(probe, "orders") == {0: (7, 10), 1: (4, 9), 2: (3, 3)}


def test_no_such_topic_is_none():
    missing = SimpleNamespace(error="UNKNOWN_TOPIC_OR_PART", partitions={})
    assert group_offsets(Probe({"orders": missing}, {}, {}), "orders") is None
    assert group_offsets(Probe({}, {}, {}), "orders") is None
