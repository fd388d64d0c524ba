"""bus.topic_reader.read_range over a partition whose leader is still being elected (a topic just
created): asked again, not raised; a refusal that does not pass is raised."""

import pytest
from confluent_kafka import KafkaError, KafkaException

from bus.clients import KafkaClients
from bus.topic_reader import read_range
from tests.doubles import Consumer, topic_metadata


class ElectingLeader(Consumer):
    """A consumer whose broker answers `error` to the first `refusals` watermark requests."""

    def __init__(self, refusals: int, error=KafkaError.NOT_LEADER_FOR_PARTITION, **kwargs):
        super().__init__(**kwargs)
        self.refusals, self.error = refusals, error

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        if self.refusals > 0:
            self.refusals -= 1
            raise KafkaException(KafkaError(self.error, "Failed to get watermark offsets"))
        return super().get_watermark_offsets(tp, timeout, cached)


def reader(consumer):
    return KafkaClients(consumer=lambda conf: consumer)


def test_a_partition_without_its_leader_yet_is_asked_again_and_read():
    c = ElectingLeader(3, topic="t", topics={"t": topic_metadata(1)}, watermarks={0: (0, 3)}, records={0: {0, 1, 2}})
    read = list(read_range({}, "t", timeout=10, clients=reader(c)))
    assert [m.offset() for m in read] == [0, 1, 2] and c.refusals == 0


def test_a_refusal_that_does_not_pass_is_raised_at_once():
    c = ElectingLeader(1, error=KafkaError.TOPIC_AUTHORIZATION_FAILED, topic="t", topics={"t": topic_metadata(1)},
                       watermarks={0: (0, 3)}, records={0: {0, 1, 2}})
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        list(read_range({}, "t", timeout=10, clients=reader(c)))
    # The positive control: the same consumer, once the refusal is spent, reads the range.
    assert len(list(read_range({}, "t", timeout=10, clients=reader(c)))) == 3


def test_a_leader_that_never_comes_is_raised_after_the_timeout():
    c = ElectingLeader(10**6, topic="t", topics={"t": topic_metadata(1)}, watermarks={0: (0, 3)})
    with pytest.raises(KafkaException, match="NOT_LEADER_FOR_PARTITION"):
        list(read_range({}, "t", timeout=0.5, clients=reader(c)))
